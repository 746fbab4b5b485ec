//! Micro-benchmark of the schema check on the benchmark's 1 KB and 64 KB alerts
//! (`cargo bench --bench validate`; run `python3 bench/payloads.py target/bench` first,
//! which bench/run.sh does).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn payload(name: &str) -> Vec<u8> {
    let path = format!("{}/target/bench/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path)
        .unwrap_or_else(|_| panic!("{path} missing: run python3 bench/payloads.py target/bench"))
}

fn validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate");
    for name in ["alert-1k.json", "alert-64k.json"] {
        let body = payload(name);
        assert!(hookscope::validate(&body).is_valid());
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| hookscope::inspect(std::hint::black_box(body)))
        });
    }
    group.finish();
}

criterion_group!(benches, validate);
criterion_main!(benches);
