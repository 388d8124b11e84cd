//! The report: rows collected per backend (with the CPU other processes took meanwhile),
//! latency summaries and number formats, and the Markdown printed at the end.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::Result;
use crate::db::Backend;
use crate::sampler::{CpuSample, load, machine};
use crate::workloads::INDICATORS;

/// One line of the result table.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) backend: Backend,
    pub(crate) measurement: String,
    pub(crate) result: String,
    pub(crate) detail: String,
}

/// Collects rows and prints progress to stderr, so that stdout has only the report.
#[derive(Debug)]
pub(crate) struct Report {
    backend: Backend,
    pub(crate) rows: Vec<Row>,
    pub(crate) plans: Vec<String>,
    /// Where the current measurement started, to tell how much CPU other processes took.
    since: CpuSample,
}

impl Report {
    /// An empty report of `backend`; the first measurement starts now.
    pub(crate) fn new(backend: Backend) -> Report {
        Report {
            backend,
            rows: Vec::new(),
            plans: Vec::new(),
            since: CpuSample::now(),
        }
    }

    /// Starts a measurement.
    pub(crate) fn start(&mut self) {
        self.since = CpuSample::now();
    }

    /// Ends the measurement started last and records it, with the share of the CPU that
    /// processes other than this one and the PostgreSQL server took meanwhile.
    pub(crate) fn add(&mut self, measurement: String, result: String, detail: String) {
        let detail = match self.since.foreign_since() {
            Some(foreign) => format!("{detail}; other processes {:.0}% CPU", 100.0 * foreign),
            None => detail,
        };
        eprintln!(
            "  {}: {measurement}: {result} ({detail})",
            self.backend.name()
        );
        self.rows.push(Row {
            backend: self.backend,
            measurement,
            result,
            detail,
        });
        self.start();
    }

    /// Adds a measurement of `runs` update rates: the median, with every run.
    pub(crate) fn add_rates(&mut self, measurement: String, mut rates: Vec<f64>, extra: &str) {
        let runs: Vec<String> = rates.iter().map(|r| thousands(*r)).collect();
        rates.sort_by(f64::total_cmp);
        let median = rates.get(rates.len() / 2).copied().unwrap_or_default();
        let detail = if runs.len() > 1 {
            format!(
                "median of {} runs: {}; {extra}",
                runs.len(),
                runs.join(" / ")
            )
        } else {
            extra.to_owned()
        };
        self.add(
            measurement,
            format!("{} updates/s", thousands(median)),
            detail,
        );
    }
}

/// `1234567.8` as `1,234,568`.
pub(crate) fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `count` events in `elapsed`, per second.
pub(crate) fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// A duration in milliseconds, to the microsecond.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// A duration in whole microseconds.
pub(crate) fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// Mean, median and 99th percentile of some latencies. The percentiles are nearest rank,
/// read from an HDR histogram of nanoseconds with 3 significant digits (within 0.1%); the
/// mean is exact.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Latency {
    pub(crate) mean: Duration,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
}

impl Latency {
    /// The summary of `samples` (zero for none).
    pub(crate) fn of(samples: &[Duration]) -> Result<Latency> {
        let mut histogram = Histogram::<u64>::new(3)?;
        for sample in samples {
            histogram.record(u64::try_from(sample.as_nanos()).unwrap_or(u64::MAX))?;
        }
        let total: Duration = samples.iter().sum();
        let count = u32::try_from(samples.len()).unwrap_or(u32::MAX).max(1);
        let at = |quantile| Duration::from_nanos(histogram.value_at_quantile(quantile));
        Ok(Latency {
            mean: total / count,
            p50: at(0.50),
            p99: at(0.99),
        })
    }
}

/// What the report says before its table.
#[derive(Debug)]
pub(crate) struct Header {
    /// The command as run.
    pub(crate) command: String,
    /// The 1-minute load average before the benchmark.
    pub(crate) load_before: String,
    /// One description per database measured.
    pub(crate) databases: Vec<String>,
    /// Updates per run.
    pub(crate) updates: usize,
    /// Runs of each update measurement.
    pub(crate) runs: usize,
    /// The whole run time.
    pub(crate) elapsed: Duration,
}

/// Prints the report on stdout: the header, the table of `rows` and the query `plans`.
pub(crate) fn print(header: &Header, rows: &[Row], plans: &[String]) {
    println!("## okerr storage benchmark\n");
    println!("- command: `{}`", header.command);
    println!(
        "- machine: {}; tokio multi-thread runtime with 2 workers; the database server \
         shares these cores; 1-minute load average {} before, {} after",
        machine(),
        header.load_before,
        load()
    );
    for description in &header.databases {
        println!("- {description}");
    }
    println!(
        "- updates: {} per run, {} run(s) each, over {INDICATORS} heartbeat indicators of \
         one project (policy Default); total run time {:.0} s",
        header.updates,
        header.runs,
        header.elapsed.as_secs_f64()
    );
    println!();
    println!("| backend | measurement | result | detail |");
    println!("|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} |",
            row.backend.name(),
            row.measurement,
            row.result,
            row.detail
        );
    }
    println!("\nQuery plans (`scheduler_query_plans`, after the claims):\n");
    for plan in plans {
        println!("- {plan}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_within_the_histogram_precision() -> Result<()> {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let latency = Latency::of(&samples)?;
        assert_eq!(latency.mean, Duration::from_micros(50_500));
        let close = |got: Duration, want_ms: u64| {
            let want = Duration::from_millis(want_ms).as_secs_f64();
            (got.as_secs_f64() - want).abs() <= want * 1e-3
        };
        assert!(close(latency.p50, 50), "{latency:?}");
        // Of 100 samples, the 99th percentile is the second largest.
        assert!(close(latency.p99, 99), "{latency:?}");
        Ok(())
    }

    #[test]
    fn no_samples_give_zeros() -> Result<()> {
        let latency = Latency::of(&[])?;
        assert_eq!(latency.mean, Duration::ZERO);
        assert_eq!(latency.p99, Duration::ZERO);
        Ok(())
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(-5.0), "0");
    }
}
