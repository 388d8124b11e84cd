//! What the script's local probes (`PROC`, `DF`, `LOADAVG`, `UPTIME`, `DATETIME`) read
//! from the machine, behind a trait so that a script can be evaluated deterministically.

use chrono::NaiveDateTime;

/// One mounted file system, for `DF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Where it is mounted.
    pub mount_point: String,
    /// The device (`/dev/sda1`, `overlay`, …).
    pub device: String,
    /// Size in bytes.
    pub total: u64,
    /// Bytes available.
    pub free: u64,
}

/// The machine as the script sees it.
pub trait Probes: std::fmt::Debug {
    /// Whether a process named `name` runs (its name or the file name of its
    /// executable).
    fn process_running(&self, name: &str) -> bool;
    /// The mounted file systems.
    fn disks(&self) -> Vec<Disk>;
    /// The 1, 5 and 15 minute load averages.
    fn load_average(&self) -> [f64; 3];
    /// Seconds since boot.
    fn uptime(&self) -> u64;
    /// The local date and time (for `DATETIME`).
    fn now(&self) -> NaiveDateTime;
}

/// The real machine, through the `sysinfo` crate.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemProbes;

impl Probes for SystemProbes {
    fn process_running(&self, name: &str) -> bool {
        use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};
        let mut sys = System::new();
        sys.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_exe(UpdateKind::OnlyIfNotSet),
        );
        sys.processes().values().any(|p| {
            p.name() == name
                || p.exe()
                    .and_then(|e| e.file_name())
                    .is_some_and(|f| f == name)
        })
    }

    fn disks(&self) -> Vec<Disk> {
        sysinfo::Disks::new_with_refreshed_list()
            .list()
            .iter()
            .map(|d| Disk {
                mount_point: d.mount_point().to_string_lossy().into_owned(),
                device: d.name().to_string_lossy().into_owned(),
                total: d.total_space(),
                free: d.available_space(),
            })
            .collect()
    }

    fn load_average(&self) -> [f64; 3] {
        let l = sysinfo::System::load_average();
        [l.one, l.five, l.fifteen]
    }

    fn uptime(&self) -> u64 {
        sysinfo::System::uptime()
    }

    fn now(&self) -> NaiveDateTime {
        // The client's wall clock, as okerrclient's DATETIME (local time).
        chrono::Local::now().naive_local()
    }
}

/// The short host name (up to the first `.`): okerrclient's default indicator name.
pub fn short_host_name() -> Option<String> {
    let name = sysinfo::System::host_name()?;
    let short = name.split('.').next().unwrap_or_default();
    (!short.is_empty()).then(|| short.to_owned())
}
