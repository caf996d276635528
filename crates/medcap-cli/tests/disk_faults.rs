//! Disk and permission faults: outputs on a full or read-only filesystem
//! give one clear error naming the path, leave the earlier outputs intact
//! and no temporary behind, and the rerun after space is freed (or the
//! filesystem made writable again) finishes as an undisturbed run does.
//!
//! The filesystem is a small tmpfs this test mounts. Where it cannot mount
//! one (not root, no `mount`), each test fails, unless `MEDCAP_SKIP` names
//! `tmpfs`: then it says so on stderr and returns without checking anything.
//! A full standard output is in docs/ERRORS.md.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::{medcap, path, text};

/// Fails the test for `why`, unless `MEDCAP_SKIP` names `tmpfs`: then says
/// on stderr that the checks did not run.
fn left_out(why: &str) -> Option<Tmpfs> {
    let skip = std::env::var("MEDCAP_SKIP").unwrap_or_default();
    assert!(
        skip.split(',').any(|s| s.trim() == "tmpfs"),
        "{why}: run as root or with CAP_SYS_ADMIN (MEDCAP_SKIP=tmpfs leaves the disk-fault checks out)"
    );
    eprintln!("left out: {why}, and MEDCAP_SKIP names tmpfs; the disk-fault checks did not run");
    None
}

/// A tmpfs mounted on a directory of its own; unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `kib` KiB on a new directory under `parent`. Where
    /// it cannot, fails the test, or says why and returns `None` when
    /// `MEDCAP_SKIP` names `tmpfs`.
    fn mount(parent: &Path, kib: u64) -> Option<Self> {
        let dir = parent.join("small-disk");
        fs::create_dir_all(&dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(&dir)
            .stderr(Stdio::piped())
            .output();
        match mounted {
            Ok(o) if o.status.success() => Some(Self { dir }),
            Ok(o) => left_out(&format!(
                "cannot mount a tmpfs here ({})",
                text(&o.stderr).trim()
            )),
            Err(e) => left_out(&format!("no mount command ({e})")),
        }
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success(), "remount {options}");
    }

    /// Fills the filesystem but for about `leave` bytes; returns the filler.
    fn fill(&self, leave: u64) -> PathBuf {
        let filler = self.dir.join("filler");
        let mut f = File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        // Write until full, then give back `leave` bytes.
        while f.write_all(&block).is_ok() {}
        drop(f);
        let len = fs::metadata(&filler).unwrap().len();
        let f = File::options().write(true).open(&filler).unwrap();
        f.set_len(len.saturating_sub(leave)).unwrap();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Every file under `dir` (relative name → bytes), temporaries included.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                files.insert(name, fs::read(&p).unwrap());
            }
        }
    }
    files
}

fn no_temporaries(dir: &Path) {
    for name in snapshot(dir).keys() {
        assert!(!name.contains(".partial"), "a temporary was left: {name}");
    }
}

/// One `error:` line that names `what` (a path under the fault) and the
/// operating system's reason.
fn assert_clear_error(out: &Output, under: &Path, reason: &str) {
    assert!(!out.status.success(), "the run succeeded on a faulty disk");
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line:\n{err}"));
    assert!(
        line.contains(path(under)),
        "the error does not name a path under {}: {line}",
        under.display()
    );
    assert!(
        err.contains(reason),
        "the error does not say {reason:?}:\n{err}"
    );
}

fn synthetic_release(dir: &Path) -> PathBuf {
    let data = dir.join("synthetic");
    let out = medcap(&["synth", "--out", path(&data), "--n", "120", "--seed", "5"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    data
}

fn prepare(data: &Path, out: &Path) -> Output {
    medcap(&[
        "prepare",
        "--medicat",
        path(data),
        "--out",
        path(out),
        "--test",
        "10",
        "--val",
        "10",
        "--ft1",
        "40",
        "--ft2-extra",
        "20",
        "--cleanup-audit",
    ])
}

#[test]
fn prepare_on_a_full_then_read_only_disk_keeps_its_outputs_and_reruns() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_release(tmp.path());
    let expected_dir = tmp.path().join("undisturbed");
    let ok = prepare(&data, &expected_dir);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let expected = snapshot(&expected_dir);

    let Some(disk) = Tmpfs::mount(tmp.path(), 4096) else {
        return;
    };
    let out = disk.dir.join("prepared");
    let first = prepare(&data, &out);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let before = snapshot(&out);
    assert_eq!(before, expected);

    // Full: the rerun fails naming a file, and what the first run wrote is
    // untouched.
    let filler = disk.fill(512);
    let full = prepare(&data, &out);
    assert_clear_error(&full, &out, "No space left on device");
    assert_eq!(
        snapshot(&out),
        before,
        "a failed rerun changed earlier outputs"
    );
    no_temporaries(&out);

    // Space freed: the rerun finishes with the same outputs.
    fs::remove_file(&filler).unwrap();
    let rerun = prepare(&data, &out);
    assert!(rerun.status.success(), "{}", text(&rerun.stderr));
    assert_eq!(snapshot(&out), expected);

    // Read-only: the same.
    disk.remount("ro");
    let read_only = prepare(&data, &out);
    assert_clear_error(&read_only, &out, "Read-only file system");
    assert_eq!(snapshot(&out), expected);
    disk.remount("rw");
    let rerun = prepare(&data, &out);
    assert!(rerun.status.success(), "{}", text(&rerun.stderr));
    assert_eq!(snapshot(&out), expected);
}

fn reproduce(out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medcap"))
        .args(["reproduce", "--reduced", "--device", "cpu", "--out"])
        .arg(out)
        .env("MEDCAP_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// What a finished run is compared on.
const OUTPUTS: [&str; 4] = [
    "report/table1.md",
    "eval/base/captions.jsonl",
    "eval/ft1/captions.jsonl",
    "eval/ft2/captions.jsonl",
];

#[test]
fn reproduce_on_a_disk_that_fills_up_resumes_to_the_same_report_once_space_is_freed() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("undisturbed");
    let ok = reproduce(&reference);
    assert!(ok.status.success(), "{}", text(&ok.stderr));

    // Half the room a whole run needs: the run stops part-way.
    let needed: u64 = snapshot(&reference).values().map(|b| b.len() as u64).sum();
    let Some(disk) = Tmpfs::mount(tmp.path(), needed / 2 / 1024) else {
        return;
    };
    let out = disk.dir.join("study");
    let full = reproduce(&out);
    assert_clear_error(&full, &out, "No space left on device");
    let stages_done = fs::read_dir(out.join("stages")).map_or(0, |d| d.count());
    assert!(
        stages_done < 6,
        "the run finished on a disk too small for it"
    );

    // Read-only on the rerun: refused, nothing of the run changed.
    let before = snapshot(&out);
    disk.remount("ro");
    let read_only = reproduce(&out);
    assert_clear_error(&read_only, &out, "Read-only file system");
    assert_eq!(
        snapshot(&out),
        before,
        "a refused rerun changed the run's files"
    );

    // Room again: the rerun continues from what was finished and ends with
    // the undisturbed run's results.
    disk.remount(&format!("rw,size={}k", 2 * needed / 1024 + 4096));
    let rerun = reproduce(&out);
    assert!(rerun.status.success(), "{}", text(&rerun.stderr));
    for file in OUTPUTS {
        let (a, b) = (
            fs::read(reference.join(file)).unwrap(),
            fs::read(out.join(file)).unwrap(),
        );
        assert!(a == b, "{file} differs from the undisturbed run's");
    }
    no_temporaries(&out);
}
