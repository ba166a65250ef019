//! PD's HTTP API (`/pd/api/v1`), the TiKV subject's view of its cluster: the PD members and their
//! leader, every store in every state, the regions that miss or have lost peers, and the
//! evict-leader scheduler. The shapes are PD's (tikv/pd `server/api`, kvproto's `metapb` and
//! `pdpb`), read from recorded responses in `chaos/testdata/pd/`; what PD may omit is optional.
//!
//! Ids are `u64` read as integers (member ids exceed 2^53, and 2^63); capacities are PD's byte
//! sizes (`"311.7GiB"`, older `"17 GiB"`), read into bytes by [`parse_byte_size`].

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::http::{HttpError, Method, call};

/// A PD member (`pdpb.Member`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub member_id: u64,
    #[serde(default)]
    pub peer_urls: Vec<String>,
    #[serde(default)]
    pub client_urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_version: Option<String>,
}

/// `GET /pd/api/v1/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    #[serde(default)]
    pub header: Header,
    #[serde(default)]
    pub members: Vec<Member>,
    /// The PD leader; absent while there is none.
    #[serde(default)]
    pub leader: Option<Member>,
    #[serde(default)]
    pub etcd_leader: Option<Member>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    #[serde(default)]
    pub cluster_id: u64,
}

/// One entry of `GET /pd/api/v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberHealth {
    pub name: String,
    pub member_id: u64,
    #[serde(default)]
    pub client_urls: Vec<String>,
    pub health: bool,
}

/// `GET /pd/api/v1/stores…`: the stores asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stores {
    pub count: usize,
    #[serde(default)]
    pub stores: Vec<StoreInfo>,
}

/// A store and its status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreInfo {
    pub store: Store,
    #[serde(default)]
    pub status: StoreStatus,
}

/// `metapb.Store` with PD's `state_name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Store {
    pub id: u64,
    #[serde(default)]
    pub address: String,
    /// 0 Up, 1 Offline, 2 Tombstone; PD omits it when 0 (Up, Disconnected and Down alike), so
    /// read [`Store::state_name`] instead.
    #[serde(default)]
    pub state: Option<i32>,
    /// `Up`, `Disconnected`, `Down`, `Offline` or `Tombstone`.
    pub state_name: String,
    #[serde(default)]
    pub labels: Vec<StoreLabel>,
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreLabel {
    pub key: String,
    pub value: String,
}

impl Store {
    /// A TiFlash store (label `engine: tiflash`), which is not one of the TiKV stores.
    pub fn is_tiflash(&self) -> bool {
        self.labels
            .iter()
            .any(|label| label.key == "engine" && label.value == "tiflash")
    }
}

/// A store's status; PD omits most of it for a store that never reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreStatus {
    #[serde(default)]
    pub capacity: Option<String>,
    #[serde(default)]
    pub available: Option<String>,
    #[serde(default)]
    pub used_size: Option<String>,
    #[serde(default)]
    pub leader_count: Option<u64>,
    #[serde(default)]
    pub region_count: Option<u64>,
    #[serde(default)]
    pub last_heartbeat_ts: Option<String>,
    #[serde(default)]
    pub uptime: Option<String>,
}

/// `GET /pd/api/v1/regions/check/<kind>`: how many regions, and which.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionCheck {
    pub count: usize,
    #[serde(default)]
    pub regions: Vec<Region>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Region {
    pub id: u64,
    #[serde(default)]
    pub peers: Vec<Peer>,
    #[serde(default)]
    pub down_peers: Vec<DownPeer>,
    #[serde(default)]
    pub pending_peers: Vec<Peer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub id: u64,
    #[serde(default)]
    pub store_id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownPeer {
    pub peer: Peer,
    #[serde(default)]
    pub down_seconds: u64,
}

/// What PD's API said, or why it said nothing.
#[derive(Debug, thiserror::Error)]
pub enum PdError {
    #[error("PD: {0}")]
    Http(#[from] HttpError),
    #[error("PD {path}: unreadable answer: {reason}")]
    Malformed { path: String, reason: String },
}

/// The states `stores` asks for: all of them (a plain `/stores` hides Tombstone stores).
pub const ALL_STORE_STATES: [&str; 5] = ["up", "disconnected", "down", "offline", "tombstone"];

/// The scheduler that moves every region leader off one store.
pub const EVICT_LEADER: &str = "evict-leader-scheduler";

/// PD's API at one member's client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pd {
    pub addr: SocketAddr,
    pub timeout: Duration,
}

impl Pd {
    pub fn new(addr: SocketAddr) -> Pd {
        Pd {
            addr,
            timeout: Duration::from_secs(2),
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, PdError> {
        let text = call(Method::Get, self.addr, path, None, self.timeout).await?;
        serde_json::from_str(&text).map_err(|error| PdError::Malformed {
            path: path.to_string(),
            reason: error.to_string(),
        })
    }

    pub async fn members(&self) -> Result<Members, PdError> {
        self.get("/pd/api/v1/members").await
    }

    pub async fn health(&self) -> Result<Vec<MemberHealth>, PdError> {
        self.get("/pd/api/v1/health").await
    }

    /// Every store, Tombstone ones included: `/stores/check` with every state (PD 7.x and
    /// later), or, where PD has no such path, `/stores` with the numeric states 0 to 2.
    pub async fn stores(&self) -> Result<Stores, PdError> {
        let query: Vec<String> = ALL_STORE_STATES
            .iter()
            .map(|state| format!("state={state}"))
            .collect();
        match self
            .get(&format!("/pd/api/v1/stores/check?{}", query.join("&")))
            .await
        {
            Err(PdError::Http(HttpError::Status { status: 404, .. })) => {
                self.get("/pd/api/v1/stores?state=0&state=1&state=2").await
            }
            other => other,
        }
    }

    /// The regions that miss a peer (`miss-peer`) or have one down (`down-peer`).
    pub async fn region_check(&self, kind: &str) -> Result<RegionCheck, PdError> {
        self.get(&format!("/pd/api/v1/regions/check/{kind}")).await
    }

    /// Adds the evict-leader scheduler for `store_id`.
    pub async fn add_evict_leader(&self, store_id: u64) -> Result<(), PdError> {
        let body = serde_json::json!({"name": EVICT_LEADER, "store_id": store_id}).to_string();
        call(
            Method::Post,
            self.addr,
            "/pd/api/v1/schedulers",
            Some(body),
            self.timeout,
        )
        .await?;
        Ok(())
    }

    /// Removes `store_id` from the evict-leader scheduler; a scheduler or store already gone is
    /// not an error (a cleanup may run twice).
    pub async fn remove_evict_leader(&self, store_id: u64) -> Result<(), PdError> {
        let path = format!("/pd/api/v1/schedulers/{EVICT_LEADER}-{store_id}");
        match call(Method::Delete, self.addr, &path, None, self.timeout).await {
            Ok(_) => Ok(()),
            Err(HttpError::Status { status, body, .. })
                if status == 404 || body.contains("not found") =>
            {
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The stores the evict-leader scheduler holds now (none when it does not exist).
    pub async fn evict_leader_stores(&self) -> Result<Vec<u64>, PdError> {
        let path = format!("/pd/api/v1/scheduler-config/{EVICT_LEADER}/list");
        match self.get::<serde_json::Value>(&path).await {
            Ok(list) => Ok(evicted_stores(&list)),
            Err(PdError::Http(HttpError::Status { status, .. }))
                if status == 404 || status == 500 =>
            {
                Ok(Vec::new())
            }
            Err(error) => Err(error),
        }
    }
}

/// The store ids of an evict-leader scheduler's configuration (`store-id-ranges` keys).
pub fn evicted_stores(list: &serde_json::Value) -> Vec<u64> {
    let mut ids: Vec<u64> = list["store-id-ranges"]
        .as_object()
        .map(|ranges| ranges.keys().filter_map(|id| id.parse().ok()).collect())
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

/// Everything health and state are read from, asked of PD at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdView {
    pub members: Members,
    pub health: Vec<MemberHealth>,
    pub stores: Stores,
    pub miss_peer: RegionCheck,
    pub down_peer: RegionCheck,
}

impl Pd {
    /// The whole view, or the first thing PD would not answer.
    pub async fn view(&self) -> Result<PdView, PdError> {
        let (members, health, stores, miss_peer, down_peer) = tokio::try_join!(
            self.members(),
            self.health(),
            self.stores(),
            self.region_check("miss-peer"),
            self.region_check("down-peer"),
        )?;
        Ok(PdView {
            members,
            health,
            stores,
            miss_peer,
            down_peer,
        })
    }
}

/// Whether the cluster is healthy as PD sees it, and if not, every reason why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PdHealth {
    pub healthy: bool,
    pub reasons: Vec<String>,
    /// The PD leader's name.
    pub leader: Option<String>,
}

impl PdView {
    /// The TiKV stores (TiFlash left out) that are not Tombstone.
    pub fn live_stores(&self) -> impl Iterator<Item = &StoreInfo> {
        self.stores
            .stores
            .iter()
            .filter(|info| !info.store.is_tiflash() && info.store.state_name != "Tombstone")
    }

    /// Healthy: every PD member healthy, a leader, at least `expected_stores` TiKV stores and
    /// every one of them `Up`, and no region missing or with a down peer.
    pub fn health(&self, expected_pd: usize, expected_stores: usize) -> PdHealth {
        let mut reasons = Vec::new();
        let unhealthy: Vec<&str> = self
            .health
            .iter()
            .filter(|member| !member.health)
            .map(|member| member.name.as_str())
            .collect();
        if !unhealthy.is_empty() {
            reasons.push(format!("PD members not healthy: {}", unhealthy.join(", ")));
        }
        if self.health.len() < expected_pd {
            reasons.push(format!(
                "{} of {expected_pd} PD members answer",
                self.health.len()
            ));
        }
        let leader = self
            .members
            .leader
            .as_ref()
            .map(|leader| leader.name.clone());
        if leader.is_none() {
            reasons.push("PD has no leader".to_string());
        }
        let stores: Vec<&StoreInfo> = self.live_stores().collect();
        let not_up: Vec<String> = stores
            .iter()
            .filter(|info| info.store.state_name != "Up")
            .map(|info| format!("store {} is {}", info.store.id, info.store.state_name))
            .collect();
        reasons.extend(not_up);
        if stores.len() < expected_stores {
            reasons.push(format!("{} of {expected_stores} TiKV stores", stores.len()));
        }
        for (check, name) in [(&self.miss_peer, "miss"), (&self.down_peer, "have down")] {
            if check.count > 0 {
                reasons.push(format!("{} regions {name} peers", check.count));
            }
        }
        PdHealth {
            healthy: reasons.is_empty(),
            reasons,
            leader,
        }
    }

    /// A snapshot for `StateCaptured`: each store's state, capacity and available bytes, region
    /// and leader counts; the PD members and leader; the region checks' counts.
    pub fn state(&self) -> serde_json::Value {
        let stores: Vec<serde_json::Value> = self
            .stores
            .stores
            .iter()
            .map(|info| {
                let status = &info.status;
                serde_json::json!({
                    "id": info.store.id,
                    "address": info.store.address,
                    "state": info.store.state_name,
                    "engine": if info.store.is_tiflash() { "tiflash" } else { "tikv" },
                    "capacity_bytes": status.capacity.as_deref().and_then(parse_byte_size),
                    "available_bytes": status.available.as_deref().and_then(parse_byte_size),
                    "region_count": status.region_count,
                    "leader_count": status.leader_count,
                })
            })
            .collect();
        serde_json::json!({
            "cluster_id": self.members.header.cluster_id,
            "pd_members": self.members.members.iter().map(|member| serde_json::json!({
                "name": member.name,
                "member_id": member.member_id,
                "client_urls": member.client_urls,
                "healthy": self.health.iter().find(|h| h.member_id == member.member_id).map(|h| h.health),
            })).collect::<Vec<_>>(),
            "pd_leader": self.members.leader.as_ref().map(|leader| &leader.name),
            "stores": stores,
            "regions_miss_peer": self.miss_peer.count,
            "regions_down_peer": self.down_peer.count,
        })
    }
}

/// PD's byte size (`"311.7GiB"`, `"0B"`, `"21.15KiB"`, before PD 3.1 `"17 GiB"`) in bytes.
pub fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let power = match unit.trim() {
        "B" | "" => 0,
        "KiB" | "KB" | "K" => 1,
        "MiB" | "MB" | "M" => 2,
        "GiB" | "GB" | "G" => 3,
        "TiB" | "TB" | "T" => 4,
        "PiB" | "PB" | "P" => 5,
        "EiB" | "EB" | "E" => 6,
        _ => return None,
    };
    let bytes = number * 1024_f64.powi(power);
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then(|| bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_byte_size;

    #[test]
    fn byte_sizes_read_as_pd_writes_them() {
        assert_eq!(parse_byte_size("0B"), Some(0));
        assert_eq!(parse_byte_size("1B"), Some(1));
        assert_eq!(parse_byte_size("21.15KiB"), Some(21_658));
        assert_eq!(parse_byte_size("9.9GiB"), Some(10_630_044_058));
        assert_eq!(parse_byte_size("3.125TiB"), Some(3_435_973_836_800));
        assert_eq!(parse_byte_size("17 GiB"), Some(17 * 1024 * 1024 * 1024));
        assert_eq!(parse_byte_size("lots"), None);
        assert_eq!(parse_byte_size("1.5 parsecs"), None);
    }
}
