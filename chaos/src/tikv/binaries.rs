//! Where `pd-server` and `tikv-server` are found, in this order: the campaign's
//! `subject_settings.tikv.binaries` directory, `EVAL_TIKV_BIN_DIR`, `PATH`, then TiUP's layout
//! (`~/.tiup/components/{pd,tikv}/<version>/`, the newest version first). The preflight names
//! every place it looked when one is missing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The variable that names a directory holding both programs.
pub const BIN_DIR_VARIABLE: &str = "EVAL_TIKV_BIN_DIR";

/// The two programs a TiKV lab runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TikvBinaries {
    pub pd_server: PathBuf,
    pub tikv_server: PathBuf,
}

/// Where to look: what the campaign, the environment and the home directory say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPlaces {
    /// `subject_settings.tikv.binaries`.
    pub campaign_dir: Option<PathBuf>,
    /// `EVAL_TIKV_BIN_DIR`.
    pub env_dir: Option<PathBuf>,
    /// `PATH`.
    pub path: Option<OsString>,
    /// `HOME`, for `~/.tiup`.
    pub home: Option<PathBuf>,
}

impl SearchPlaces {
    /// This process's environment, with the campaign's directory.
    pub fn here(campaign_dir: Option<&str>) -> SearchPlaces {
        SearchPlaces {
            campaign_dir: campaign_dir.map(PathBuf::from),
            env_dir: std::env::var_os(BIN_DIR_VARIABLE).map(PathBuf::from),
            path: std::env::var_os("PATH"),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }

    /// The first place that has `program` (`pd-server` in TiUP's `pd` component, `tikv-server`
    /// in `tikv`).
    pub fn find(&self, program: &str, component: &str) -> Option<PathBuf> {
        let in_dir = |dir: &Path| Some(dir.join(program)).filter(|file| executable(file));
        self.campaign_dir
            .as_deref()
            .and_then(in_dir)
            .or_else(|| self.env_dir.as_deref().and_then(in_dir))
            .or_else(|| {
                self.path
                    .as_ref()
                    .and_then(|path| std::env::split_paths(path).find_map(|dir| in_dir(&dir)))
            })
            .or_else(|| {
                let components = self.home.as_ref()?.join(".tiup/components").join(component);
                newest_first(&components)
                    .into_iter()
                    .find_map(|version| in_dir(&version))
            })
    }

    /// Both programs, or what is missing and every place that was searched.
    pub fn binaries(&self) -> Result<TikvBinaries, String> {
        let pd_server = self.find("pd-server", "pd");
        let tikv_server = self.find("tikv-server", "tikv");
        match (pd_server, tikv_server) {
            (Some(pd_server), Some(tikv_server)) => Ok(TikvBinaries {
                pd_server,
                tikv_server,
            }),
            (pd_server, tikv_server) => {
                let missing: Vec<&str> = [
                    pd_server.is_none().then_some("pd-server"),
                    tikv_server.is_none().then_some("tikv-server"),
                ]
                .into_iter()
                .flatten()
                .collect();
                Err(format!(
                    "{} not found; looked in {}",
                    missing.join(" and "),
                    self.places()
                ))
            }
        }
    }

    /// The four places, as the message names them.
    fn places(&self) -> String {
        let shown = |dir: &Option<PathBuf>| {
            dir.as_ref()
                .map_or("not set".to_string(), |dir| dir.display().to_string())
        };
        format!(
            "subject_settings.tikv.binaries ({}), {BIN_DIR_VARIABLE} ({}), PATH, and {}",
            shown(&self.campaign_dir),
            shown(&self.env_dir),
            self.home.as_ref().map_or(
                "~/.tiup/components/{pd,tikv}/<version>/ (no HOME)".to_string(),
                |home| format!("{}/.tiup/components/{{pd,tikv}}/<version>/", home.display())
            )
        )
    }
}

fn executable(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The version directories of a TiUP component (`v8.5.1`, `v7.5.0`, …), the newest first.
fn newest_first(component: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(component) else {
        return Vec::new();
    };
    let mut versions: Vec<(Vec<u64>, PathBuf)> = entries
        .flatten()
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let numbers = name
                .trim_start_matches('v')
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|part| part.parse().ok())
                .collect();
            (numbers, entry.path())
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, path)| path).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(dir: &Path, name: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).unwrap();
        let file = dir.join(name);
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        file
    }

    #[test]
    fn the_four_places_are_searched_in_order() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        // TiUP: the newest version wins (v10 after v9, by number).
        program(&home.join(".tiup/components/pd/v9.0.0"), "pd-server");
        let newest = program(&home.join(".tiup/components/pd/v10.1.0"), "pd-server");
        program(&home.join(".tiup/components/tikv/v10.1.0"), "tikv-server");
        let mut places = SearchPlaces {
            home: Some(home.clone()),
            ..SearchPlaces::default()
        };
        assert_eq!(places.binaries().unwrap().pd_server, newest);
        let on_path = program(&root.path().join("bin"), "pd-server");
        places.path = Some(root.path().join("bin").into_os_string());
        assert_eq!(places.binaries().unwrap().pd_server, on_path);
        let env = program(&root.path().join("env"), "pd-server");
        places.env_dir = Some(root.path().join("env"));
        assert_eq!(places.binaries().unwrap().pd_server, env);
        let campaign = program(&root.path().join("campaign"), "pd-server");
        places.campaign_dir = Some(root.path().join("campaign"));
        assert_eq!(places.binaries().unwrap().pd_server, campaign);
        // A file that is not executable is not a program.
        std::fs::write(root.path().join("campaign/tikv-server"), "").unwrap();
        assert!(places.binaries().unwrap().tikv_server.starts_with(&home));
    }

    #[test]
    fn what_is_missing_and_every_place_searched_are_named() {
        let places = SearchPlaces {
            campaign_dir: None,
            env_dir: Some(PathBuf::from("/opt/tikv/bin")),
            path: Some(OsString::from("/nonexistent")),
            home: Some(PathBuf::from("/home/sre")),
        };
        assert_eq!(
            places.binaries().unwrap_err(),
            "pd-server and tikv-server not found; looked in subject_settings.tikv.binaries (not set), EVAL_TIKV_BIN_DIR (/opt/tikv/bin), PATH, and /home/sre/.tiup/components/{pd,tikv}/<version>/"
        );
    }
}
