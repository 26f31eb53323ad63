//! DMARC aggregate reports from a full store: 1,000,000 recorded rows over 50
//! policy domains and 2,000 source IPs, aggregated and written as report mails
//! (`mailwarden reports send --all --out DIR`, no DNS: every destination is in
//! its own domain). Each sample starts from a fresh copy of the filled store.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

const ROWS: usize = 1_000_000;
const DOMAINS: usize = 50;

fn aggregate_a_million_rows(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let template = dir.path().join("template.db");
    mailwarden::reports_fill_for_bench(&template, ROWS, DOMAINS).expect("fill");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("reports");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.bench_function("aggregate 1M rows into 50 reports", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for i in 0..iterations {
                let store = dir.path().join(format!("run-{i}.db"));
                std::fs::copy(&template, &store).expect("copy");
                let out = dir.path().join(format!("out-{i}"));
                std::fs::create_dir_all(&out).expect("out dir");
                let config = mailwarden::config::parse_str(
                    &format!(
                        "[dns]\nnameservers = [\"127.0.0.1:9\"]\n[reports]\nstore = \"{}\"\n",
                        store.display()
                    ),
                    None,
                )
                .expect("config");
                let options = mailwarden::ReportSendOptions {
                    out: Some(out.clone()),
                    all: true,
                };
                let start = Instant::now();
                let summary = rt
                    .block_on(mailwarden::reports_send(&config, &options))
                    .expect("send");
                total += start.elapsed();
                assert_eq!((summary.built, summary.written), (DOMAINS, DOMAINS));
                black_box(summary);
                let _ = std::fs::remove_file(&store);
                let _ = std::fs::remove_dir_all(&out);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, aggregate_a_million_rows);
criterion_main!(benches);
