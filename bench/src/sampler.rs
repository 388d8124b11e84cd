//! What the machine is and what else ran on it meanwhile, from `/proc` (Linux; zero or
//! "unknown" elsewhere).

/// CPU time of the machine, of this process and of the PostgreSQL server, in clock ticks,
/// read from `/proc` (zero elsewhere).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuSample {
    /// Every tick of every core.
    total: u64,
    /// Ticks the cores were busy.
    busy: u64,
    /// Ticks of this process and of the `postgres` processes.
    ours: u64,
}

impl CpuSample {
    pub(crate) fn now() -> CpuSample {
        let (total, busy) = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|stat| {
                let line = stat.lines().next()?.to_owned();
                let ticks: Vec<u64> = line
                    .split_whitespace()
                    .skip(1)
                    .take(8)
                    .filter_map(|t| t.parse().ok())
                    .collect();
                // user nice system idle iowait irq softirq steal
                let total = ticks.iter().sum();
                let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
                Some((total, total - idle.min(total)))
            })
            .unwrap_or_default();
        let mut ours = process_ticks("/proc/self/stat").map_or(0, |(_, t)| t);
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let path = entry.path().join("stat");
                if let Some(("postgres", ticks)) = process_ticks(&path.display().to_string())
                    .as_ref()
                    .map(|(comm, t)| (comm.as_str(), *t))
                {
                    ours += ticks;
                }
            }
        }
        CpuSample { total, busy, ours }
    }

    /// The share of the machine's CPU that other processes used since `self`; `None` when
    /// too little time passed to tell (the kernel counts in ticks of usually 10 ms).
    pub(crate) fn foreign_since(self) -> Option<f64> {
        let now = CpuSample::now();
        let total = now.total.saturating_sub(self.total);
        let busy = now.busy.saturating_sub(self.busy);
        let ours = now.ours.saturating_sub(self.ours);
        (total >= 200).then(|| busy.saturating_sub(ours) as f64 / total as f64)
    }
}

/// A process's command name and its user + system ticks, from its `stat` file.
fn process_ticks(path: &str) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    // After the command: state is field 3, utime field 14 and stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// The machine: CPU model, cores and memory.
pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or_else(
            || "unknown memory".to_owned(),
            |kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0),
        );
    format!("{cpu}, {cores} cores, {memory}")
}

/// The 1-minute load average, to tell whether something else ran meanwhile.
pub(crate) fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}
