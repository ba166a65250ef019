//! nftables rules of network faults. Every rule lives in one table, `inet eval`, inside a lab
//! node's own network namespace, so that nothing else on the host is touched; each fault owns
//! its chains and its cleanup deletes exactly those. Rulesets are built from typed values (our
//! own nodes' addresses, numbers), never from campaign text.

use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::lab::sys;

/// The harness's table, family `inet`.
pub const TABLE: &str = "eval";

/// Direction of a rule relative to the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Input,
    Output,
}

impl Hook {
    fn name(self) -> &'static str {
        match self {
            Hook::Input => "input",
            Hook::Output => "output",
        }
    }
}

/// One chain of a fault: hooked at `hook`, dropping what `rule` matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropChain {
    pub name: String,
    pub hook: Hook,
    pub rule: DropRule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropRule {
    /// Packets from (input) or to (output) these addresses.
    Peers(Vec<IpAddr>),
    /// `percent` of the packets on the node's `eth0`, drawn at random per packet.
    Random { percent: u32 },
}

impl DropChain {
    fn ruleset(&self) -> String {
        let hook = self.hook.name();
        let name = &self.name;
        let matcher = match (&self.rule, self.hook) {
            (DropRule::Peers(addresses), hook) => {
                let field = if hook == Hook::Input {
                    "saddr"
                } else {
                    "daddr"
                };
                let list = addresses
                    .iter()
                    .map(IpAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("ip {field} {{ {list} }}")
            }
            (DropRule::Random { percent }, hook) => {
                let interface = if hook == Hook::Input {
                    "iifname"
                } else {
                    "oifname"
                };
                format!(
                    "{interface} \"eth0\" numgen random mod 100 < {}",
                    percent.min(&100)
                )
            }
        };
        format!(
            "add table inet {TABLE}\n\
             add chain inet {TABLE} {name} {{ type filter hook {hook} priority -10; policy accept; }}\n\
             add rule inet {TABLE} {name} {matcher} drop\n"
        )
    }
}

/// Adds `chains` in `netns` atomically (one `nft -f` transaction).
pub async fn add_chains(netns: &str, chains: &[DropChain]) -> Result<()> {
    let ruleset: String = chains.iter().map(DropChain::ruleset).collect();
    sys::run(
        "ip",
        ["netns", "exec", netns, "nft", "-f", "-"],
        Some(&ruleset),
    )
    .await?;
    Ok(())
}

/// Deletes the chains named `names` from the table in `netns`; chains already gone are fine.
pub async fn delete_chains(netns: &str, names: &[String]) -> Result<()> {
    let present = list_chains(netns).await?;
    for name in names.iter().filter(|name| present.contains(name)) {
        sys::run(
            "ip",
            [
                "netns", "exec", netns, "nft", "delete", "chain", "inet", TABLE, name,
            ],
            None,
        )
        .await?;
    }
    Ok(())
}

/// The harness's chains in `netns` (empty when its table is absent).
pub async fn list_chains(netns: &str) -> Result<Vec<String>> {
    match sys::run(
        "ip",
        [
            "netns", "exec", netns, "nft", "-j", "list", "table", "inet", TABLE,
        ],
        None,
    )
    .await
    {
        Ok(json) => {
            let value: serde_json::Value = serde_json::from_str(&json)
                .map_err(|error| Error::Other(format!("nft -j output: {error}")))?;
            Ok(value["nftables"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| item["chain"]["name"].as_str().map(str::to_string))
                .collect())
        }
        Err(Error::Command { stderr, .. }) if stderr.contains("No such file or directory") => {
            Ok(Vec::new())
        }
        Err(error) => Err(error),
    }
}

/// Deletes the whole table in `netns`, if present.
pub async fn delete_table(netns: &str) -> Result<()> {
    if !std::path::Path::new("/run/netns").join(netns).exists() {
        return Ok(());
    }
    match sys::run(
        "ip",
        [
            "netns", "exec", netns, "nft", "delete", "table", "inet", TABLE,
        ],
        None,
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(Error::Command { stderr, .. }) if stderr.contains("No such file or directory") => {
            Ok(())
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rulesets_are_built_from_typed_values() {
        let chain = DropChain {
            name: "partition_in".into(),
            hook: Hook::Input,
            rule: DropRule::Peers(vec![
                "10.250.0.2".parse().unwrap(),
                "10.250.0.3".parse().unwrap(),
            ]),
        };
        assert_eq!(
            chain.ruleset(),
            "add table inet eval\nadd chain inet eval partition_in { type filter hook input priority -10; policy accept; }\nadd rule inet eval partition_in ip saddr { 10.250.0.2, 10.250.0.3 } drop\n"
        );
        let loss = DropChain {
            name: "loss_out".into(),
            hook: Hook::Output,
            rule: DropRule::Random { percent: 30 },
        };
        assert!(
            loss.ruleset()
                .contains("oifname \"eth0\" numgen random mod 100 < 30 drop")
        );
    }
}
