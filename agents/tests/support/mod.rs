//! What the reference operator's TiKV tests share: PD's recorded answers
//! (`chaos/testdata/pd/`, sources in its README), as recorded or put onto a lab.

#![allow(dead_code)]

use std::path::Path;

/// A recorded PD answer, as recorded.
pub fn recorded(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../chaos/testdata/pd")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The lab the TiKV tests use: stores at nodes 1 to 3, PD members at nodes 4 to 6, node N at
/// `http://10.250.1.N:2379` (a store's status address, a member's client URL).
pub fn lab_endpoints() -> Vec<String> {
    (1..=6)
        .map(|node| format!("http://10.250.1.{node}:2379"))
        .collect()
}

/// A recorded answer of the v8.1 cluster with its identities put onto the lab's: its PD members'
/// client URLs become nodes 4 to 6 (the recorded leader, `basic-53pe89`, is node 5) and its
/// stores' status addresses (TiKV's `--advertise-status-addr`) nodes 1 to 3 (store 4, store 1
/// and store 5).
pub fn recorded_onto_lab(name: &str) -> String {
    [
        (
            "basic-pd-7axwci.basic-pd-peer.default:2379",
            "10.250.1.4:2379",
        ),
        (
            "basic-pd-53pe89.basic-pd-peer.default:2379",
            "10.250.1.5:2379",
        ),
        (
            "basic-pd-0qt9e9.basic-pd-peer.default:2379",
            "10.250.1.6:2379",
        ),
        (
            "basic-tikv-5gzwgj.basic-tikv-peer.default:20180",
            "10.250.1.1:2379",
        ),
        (
            "basic-tikv-06vg39.basic-tikv-peer.default:20180",
            "10.250.1.2:2379",
        ),
        (
            "basic-tikv-4q2bgw.basic-tikv-peer.default:20180",
            "10.250.1.3:2379",
        ),
    ]
    .iter()
    .fold(recorded(name), |text, (from, to)| text.replace(from, to))
}
