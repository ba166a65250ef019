//! Ports for servers started on 127.0.0.1 at a port chosen beforehand (a cluster's members, whose
//! routes name each other's ports): picked outside the kernel's ephemeral range.
//!
//! A port the kernel hands out for `bind(…:0)` comes from the same range as the local ends of
//! outgoing connections. Between the pick and the server's own bind, any connection on the
//! host (another test's, another member's route) can take it, and the server then exits with
//! "bind: address already in use". Below that range only another pick can collide.

use std::net::TcpListener;
use std::ops::Range;

/// The lowest port picked (below it lie the well-known and many services' own ports).
const LOWEST: u16 = 10_000;

/// `count` distinct ports nothing listens on now, outside the ephemeral range where it leaves
/// room (`/proc/sys/net/ipv4/ip_local_port_range`), else from the kernel's pick.
pub fn unused_ports(count: usize) -> std::io::Result<Vec<u16>> {
    let range = below_ephemeral(&std::fs::read_to_string(EPHEMERAL).unwrap_or_default());
    // Each pick stays bound until all are made, so that no two are the same.
    let mut held = Vec::with_capacity(count);
    while held.len() < count {
        let listener = match &range {
            Some(range) => {
                let mut bound = None;
                for _ in 0..200 {
                    if let Ok(listener) = TcpListener::bind(("127.0.0.1", random_in(range))) {
                        bound = Some(listener);
                        break;
                    }
                }
                match bound {
                    Some(listener) => listener,
                    None => TcpListener::bind("127.0.0.1:0")?,
                }
            }
            None => TcpListener::bind("127.0.0.1:0")?,
        };
        held.push(listener);
    }
    held.iter()
        .map(|listener| listener.local_addr().map(|address| address.port()))
        .collect()
}

/// One port, as [`unused_ports`].
pub fn unused_port() -> std::io::Result<u16> {
    Ok(unused_ports(1)?[0])
}

/// A port of `range`, at random (std's hasher keys come from the OS's randomness).
fn random_in(range: &Range<u16>) -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    range.start + (random % u64::from(range.end - range.start)) as u16
}

const EPHEMERAL: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// The ports from [`LOWEST`] up to the ephemeral range's start, from the file's text
/// (`32768\t60999`); `None` when that leaves fewer than 1,000 or the text is not two numbers.
fn below_ephemeral(text: &str) -> Option<Range<u16>> {
    let mut numbers = text.split_whitespace().map(str::parse::<u16>);
    let (Some(Ok(low)), Some(Ok(_high))) = (numbers.next(), numbers.next()) else {
        return None;
    };
    (low >= LOWEST.saturating_add(1_000)).then_some(LOWEST..low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_ends_where_the_kernels_begins() {
        assert_eq!(below_ephemeral("32768\t60999\n"), Some(10_000..32_768));
        assert_eq!(below_ephemeral("1024 65535"), None);
        assert_eq!(below_ephemeral("10500 65535"), None);
        assert_eq!(below_ephemeral(""), None);
        assert_eq!(below_ephemeral("x y"), None);
    }

    #[test]
    fn the_ports_are_distinct_unbound_and_below_the_ephemeral_range() {
        let ports = unused_ports(6).unwrap();
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), 6, "{ports:?}");
        let range = below_ephemeral(&std::fs::read_to_string(EPHEMERAL).unwrap_or_default());
        for port in ports {
            if let Some(range) = &range {
                assert!(range.contains(&port), "{port} outside {range:?}");
            }
            TcpListener::bind(("127.0.0.1", port)).expect("the port is free again");
        }
    }
}
