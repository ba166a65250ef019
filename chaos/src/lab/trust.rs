//! What a lab accepts from files on disk before it acts on them. A lab's `lab.json` and the
//! cleanup records in the log are data anyone with write access could forge, and acting on them
//! means removing directories and signalling processes as root. So a lab is opened only from its
//! own place (`<data-dir>/labs/<name>`, no `..`, no symlink out), only from files this user owns
//! and nobody else can write, only when every path, namespace and address in it is the one the lab
//! itself lays out; and a pid is signalled only when it is still the process the lab started
//! (the same start time, or for labs made before start times were kept, a command line naming the
//! node's own directory).

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use schemas::campaign::SubjectKind;

use super::{Isolation, LabState, claim, node_layout, node_name, sys};
use crate::error::{Error, Result};

/// Whether `pid` runs and is the process the lab started: its start time is `started` when one
/// was recorded; otherwise its command line names `marker` (a path only the lab's own processes
/// are given).
pub(super) fn started_by_lab(pid: u32, started: Option<u64>, marker: &Path) -> bool {
    match started {
        Some(started) => sys::same_process(pid, started),
        None => {
            sys::process_alive(pid)
                && sys::command_line(pid)
                    .is_some_and(|line| line.contains(&marker.display().to_string()))
        }
    }
}

/// Refuses a file or directory that another user owns or that the group or others may write:
/// whoever could write it could make this process remove or signal anything.
pub(super) fn check_owned(path: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(path).map_err(Error::io(path))?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.file_type().is_symlink() {
        return Err(Error::Refused(format!(
            "{} is a symbolic link; a lab's files are never links",
            path.display()
        )));
    }
    if meta.uid() != me {
        return Err(Error::Refused(format!(
            "{} belongs to uid {}, not to this user (uid {me})",
            path.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Error::Refused(format!(
            "{} is writable by its group or by others (mode {:o}); `chmod go-w` it",
            path.display(),
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// A lab name as `lab up` accepts it: letters, digits, `-` and `_` (so never `..` or a path).
pub(super) fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::Lab(format!(
            "lab name {name:?} may hold only letters, digits, '-' and '_'"
        )));
    }
    Ok(())
}

/// The name of the lab at `dir` when `dir` is a lab directory of `data_dir` (`<data-dir>/labs/
/// <name>`), judged on the path as written: a `..`, a `.` or another parent is refused.
pub(super) fn lab_name_in(labs: &Path, dir: &Path) -> Result<String> {
    let refuse = || {
        Error::Refused(format!(
            "{} is not a lab directory of {}",
            dir.display(),
            labs.display()
        ))
    };
    if dir
        .components()
        .any(|part| matches!(part, Component::ParentDir | Component::CurDir))
    {
        return Err(refuse());
    }
    let name = dir
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(refuse)?;
    check_name(name).map_err(|_| refuse())?;
    let parent = dir.parent().ok_or_else(refuse)?;
    let same_parent = parent == labs
        || labs
            .canonicalize()
            .is_ok_and(|labs| parent.canonicalize().is_ok_and(|parent| parent == labs));
    if !same_parent {
        return Err(refuse());
    }
    Ok(name.to_string())
}

/// Checks a lab's state as read from `dir/lab.json` (`dir` canonical): it names `dir` itself, and
/// every node's directories, namespace and addresses are those the lab lays out for its index.
pub(super) fn check_state(state: &LabState, dir: &Path) -> Result<()> {
    let file = dir.join("lab.json");
    let refuse = |what: String| Err(Error::Refused(format!("{}: {what}", file.display())));
    if state.dir != dir {
        return refuse(format!(
            "it names the directory {}, not its own",
            state.dir.display()
        ));
    }
    if dir.file_name().and_then(|name| name.to_str()) != Some(state.name.as_str()) {
        return refuse(format!("it names the lab {:?}, not its own", state.name));
    }
    if state.index >= claim::MAX_LABS {
        return refuse(format!("index {} is out of range", state.index));
    }
    if state.nodes.is_empty() || state.nodes.len() > 9 {
        return refuse(format!("{} nodes (a lab has 1 to 9)", state.nodes.len()));
    }
    let isolated = state.isolation == Isolation::Namespaces;
    let index = state.index;
    if state.bridge_netns != isolated.then(|| format!("eval-l{index}-br"))
        || state.host_veth != isolated.then(|| format!("el{index}h"))
    {
        return refuse("its bridge is not the one the lab makes for its index".to_string());
    }
    if state.pd_members >= state.nodes.len() as u32
        || (state.subject == SubjectKind::Etcd && state.pd_members != 0)
    {
        return refuse(format!(
            "{} PD members among {} nodes of a {} lab",
            state.pd_members,
            state.nodes.len(),
            state.subject
        ));
    }
    for (position, node) in state.nodes.iter().enumerate() {
        let number = position as u32 + 1;
        let name = node_name(
            state.subject,
            state.nodes.len() as u32,
            state.pd_members,
            number,
        );
        let expected = node_layout(index, number, dir, isolated, name);
        let laid_out = node.number == expected.number
            && node.name == expected.name
            && node.netns == expected.netns
            && node.client_addr == expected.client_addr
            && node.peer_addr == expected.peer_addr
            && node.internal_client_addr == expected.internal_client_addr
            && node.internal_peer_addr == expected.internal_peer_addr
            && node.dir == expected.dir
            && node.data_dir == expected.data_dir
            && node.delay_control == expected.delay_control;
        if !laid_out {
            return refuse(format!(
                "node {} is not laid out as the lab lays out node {} (its directories, namespace \
                 or addresses differ)",
                node.number,
                position + 1
            ));
        }
    }
    Ok(())
}

/// Reads and checks `dir/lab.json` (`dir` canonical).
pub(super) fn read_state(dir: &Path) -> Result<LabState> {
    check_owned(dir)?;
    let file = dir.join("lab.json");
    check_owned(&file)?;
    let text = std::fs::read_to_string(&file).map_err(Error::io(&file))?;
    let state: LabState = serde_json::from_str(&text)
        .map_err(|error| Error::Lab(format!("{}: {error}", file.display())))?;
    check_state(&state, dir)?;
    Ok(state)
}

/// Reads and checks the registry's copy of a lab's state (`file`, in the claim of `index`, whose
/// owner is `lab_dir`), as [`read_state`] checks a lab's own: it must be the lab of that claim.
pub(super) fn read_state_copy(file: &Path, index: u32, lab_dir: &Path) -> Result<LabState> {
    check_owned(file)?;
    let text = std::fs::read_to_string(file).map_err(Error::io(file))?;
    let state: LabState = serde_json::from_str(&text)
        .map_err(|error| Error::Lab(format!("{}: {error}", file.display())))?;
    if state.index != index {
        return Err(Error::Refused(format!(
            "{}: it names index {}, not its claim's {index}",
            file.display(),
            state.index
        )));
    }
    check_state(&state, lab_dir)?;
    Ok(state)
}

/// `dir` made canonical, and refused unless it is directly inside `labs`.
pub(super) fn canonical_lab_dir(labs: &Path, dir: &Path) -> Result<PathBuf> {
    let canonical = dir.canonicalize().map_err(Error::io(dir))?;
    let labs = labs.canonicalize().map_err(Error::io(labs))?;
    if canonical.parent() != Some(labs.as_path()) {
        return Err(Error::Refused(format!(
            "{} leads to {}, outside {}",
            dir.display(),
            canonical.display(),
            labs.display()
        )));
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_lab_directory_is_named_only_directly_inside_the_labs_directory() {
        let root = tempfile::tempdir().unwrap();
        let labs = root.path().join("labs");
        std::fs::create_dir_all(labs.join("t1")).unwrap();
        assert_eq!(lab_name_in(&labs, &labs.join("t1")).unwrap(), "t1");
        for bad in [
            labs.join("t1/../../elsewhere"),
            labs.join("t1/inner"),
            root.path().join("t1"),
            labs.join("a b"),
            PathBuf::from("/"),
        ] {
            let error = lab_name_in(&labs, &bad).unwrap_err().to_string();
            assert!(error.contains("is not a lab directory of"), "{error}");
        }
        // A symbolic link in the labs directory leads elsewhere: canonical, it is refused.
        std::os::unix::fs::symlink(root.path(), labs.join("link")).unwrap();
        let error = canonical_lab_dir(&labs, &labs.join("link"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("outside"), "{error}");
    }

    #[test]
    fn files_others_may_write_or_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lab.json");
        std::fs::write(&file, "{}").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        check_owned(&file).unwrap();
        for mode in [0o664, 0o646, 0o666] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = check_owned(&file).unwrap_err().to_string();
            assert!(
                error.contains("writable by its group or by others"),
                "{error}"
            );
        }
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let error = check_owned(&link).unwrap_err().to_string();
        assert!(error.contains("symbolic link"), "{error}");
    }

    /// A registry entry is believed only when it is the lab of its own claim, laid out as the
    /// lab lays it out: a forged one names nothing else to remove.
    #[test]
    fn a_registry_copy_is_refused_unless_it_is_its_claims_own_lab() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("labs/t1");
        std::fs::create_dir_all(&dir).unwrap();
        let dir = dir.canonicalize().unwrap();
        let state = LabState {
            name: "t1".to_string(),
            index: 5,
            subject: SubjectKind::Etcd,
            isolation: Isolation::Loopback,
            dir: dir.clone(),
            bridge_netns: None,
            host_veth: None,
            cluster_token: "eval-l5-0".to_string(),
            nodes: (1..=3)
                .map(|n| node_layout(5, n, &dir, false, node_name(SubjectKind::Etcd, 3, 0, n)))
                .collect(),
            pd_members: 0,
            tikv_binaries: None,
        };
        let copy = root.path().join("copy.json");
        let write = |state: &LabState, mode: u32| {
            std::fs::write(&copy, serde_json::to_string(state).unwrap()).unwrap();
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write(&state, 0o644);
        assert_eq!(read_state_copy(&copy, 5, &dir).unwrap(), state);
        // Another claim's index, another owner directory, a node laid out elsewhere, a file
        // others may write: each refused.
        let error = read_state_copy(&copy, 6, &dir).unwrap_err().to_string();
        assert!(error.contains("not its claim's 6"), "{error}");
        let error = read_state_copy(&copy, 5, root.path())
            .unwrap_err()
            .to_string();
        assert!(error.contains("not its own"), "{error}");
        let mut moved = state.clone();
        moved.nodes[1].data_dir = PathBuf::from("/etc");
        write(&moved, 0o644);
        let error = read_state_copy(&copy, 5, &dir).unwrap_err().to_string();
        assert!(error.contains("not laid out"), "{error}");
        write(&state, 0o666);
        let error = read_state_copy(&copy, 5, &dir).unwrap_err().to_string();
        assert!(
            error.contains("writable by its group or by others"),
            "{error}"
        );
    }

    #[test]
    fn a_recycled_pid_is_not_the_labs_process() {
        let me = std::process::id();
        let started = sys::start_time(me).unwrap();
        assert!(started_by_lab(me, Some(started), Path::new("/nowhere")));
        assert!(!started_by_lab(
            me,
            Some(started + 1),
            Path::new("/nowhere")
        ));
        // Without a start time, the command line must name the lab's path.
        assert!(!started_by_lab(me, None, Path::new("/no/such/lab/dir")));
        let own = sys::command_line(me).unwrap();
        let first = own.split(' ').next().unwrap();
        assert!(started_by_lab(me, None, Path::new(first)));
    }
}
