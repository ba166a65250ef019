//! A lab's network: a namespace per node with a veth into a bridge in a namespace of the lab's
//! own, and a veth from the host into that bridge, built with `ip` (argv only) and removed
//! whole with its namespaces.

use std::net::Ipv4Addr;
use std::path::Path;

use super::{Lab, sys};
use crate::error::Result;

impl Lab {
    pub(super) async fn build_network(&mut self) -> Result<()> {
        let index = self.state.index;
        let bridge = self.state.bridge_netns.clone().expect("isolated lab");
        let host_veth = self.state.host_veth.clone().expect("isolated lab");
        sys::run("ip", ["netns", "add", &bridge], None).await?;
        self.save()?;
        ip_in(&bridge, &["link", "add", "br0", "type", "bridge"]).await?;
        ip_in(&bridge, &["link", "set", "br0", "up"]).await?;
        ip_in(&bridge, &["link", "set", "lo", "up"]).await?;
        for node in &self.state.nodes {
            let netns = node.netns.clone().expect("isolated node");
            let veth = format!("el{index}n{}", node.number);
            let bridge_end = format!("{veth}b");
            // This index is ours: a pair an interrupted build of it left on the host goes first.
            delete_host_link(&veth).await?;
            let address = format!("{}/24", node.client_addr.ip());
            sys::run("ip", ["netns", "add", &netns], None).await?;
            sys::run(
                "ip",
                [
                    "link",
                    "add",
                    &veth,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &bridge_end,
                ],
                None,
            )
            .await?;
            sys::run("ip", ["link", "set", &veth, "netns", &netns], None).await?;
            sys::run("ip", ["link", "set", &bridge_end, "netns", &bridge], None).await?;
            ip_in(&netns, &["link", "set", &veth, "name", "eth0"]).await?;
            ip_in(&netns, &["addr", "add", &address, "dev", "eth0"]).await?;
            ip_in(&netns, &["link", "set", "eth0", "up"]).await?;
            ip_in(&netns, &["link", "set", "lo", "up"]).await?;
            ip_in(&bridge, &["link", "set", &bridge_end, "master", "br0"]).await?;
            ip_in(&bridge, &["link", "set", &bridge_end, "up"]).await?;
        }
        let host_bridge_end = format!("{host_veth}b");
        sys::run(
            "ip",
            [
                "link",
                "add",
                &host_veth,
                "type",
                "veth",
                "peer",
                "name",
                &host_bridge_end,
            ],
            None,
        )
        .await?;
        sys::run(
            "ip",
            ["link", "set", &host_bridge_end, "netns", &bridge],
            None,
        )
        .await?;
        ip_in(&bridge, &["link", "set", &host_bridge_end, "master", "br0"]).await?;
        ip_in(&bridge, &["link", "set", &host_bridge_end, "up"]).await?;
        let host_address = format!("{}/24", host_ip(index));
        sys::run(
            "ip",
            ["addr", "add", &host_address, "dev", &host_veth],
            None,
        )
        .await?;
        sys::run("ip", ["link", "set", &host_veth, "up"], None).await?;
        Ok(())
    }
}

/// The host's address on a lab's bridge.
/// The host-side names of the lab's node veths (`el<index>n<node>`), before they are moved into
/// the nodes' namespaces.
pub(super) fn node_veths(state: &super::LabState) -> Vec<String> {
    state
        .nodes
        .iter()
        .map(|node| format!("el{}n{}", state.index, node.number))
        .collect()
}

/// Deletes the link `name` (and so its veth peer) from the host's namespace when it is there.
pub(super) async fn delete_host_link(name: &str) -> Result<()> {
    if std::path::Path::new("/sys/class/net").join(name).exists() {
        sys::run("ip", ["link", "del", name], None).await?;
    }
    Ok(())
}

pub fn host_ip(index: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, 250, index as u8, 254)
}

async fn ip_in(netns: &str, args: &[&str]) -> Result<String> {
    let mut full = vec!["-n", netns];
    full.extend_from_slice(args);
    sys::run("ip", full, None).await
}

pub(super) async fn delete_netns(netns: &str, problems: &mut Vec<String>) {
    if Path::new("/run/netns").join(netns).exists()
        && let Err(error) = sys::run("ip", ["netns", "del", netns], None).await
    {
        problems.push(error.to_string());
    }
}
