//! Phone masking runs for every phone field of every conversation an agent without "show
//! real phone numbers" reads, in queries and in every subscription event: keep it cheap.
//!
//! `cargo bench -p agentdesk-bench --bench phone`

use std::hint::black_box;

use agentdesk::phone::{PhoneNumber, mask};
use criterion::{Criterion, criterion_group, criterion_main};

fn phone(c: &mut Criterion) {
    c.bench_function("mask +1 (NANP)", |b| b.iter(|| mask(black_box("+14155550123"))));
    c.bench_function("mask +852", |b| b.iter(|| mask(black_box("+85223456789"))));
    c.bench_function("mask an unparseable stored value", |b| b.iter(|| mask(black_box("12345678"))));
    c.bench_function("parse +1 (415) 555-0123", |b| {
        b.iter(|| PhoneNumber::parse(black_box("+1 (415) 555-0123")))
    });
}

criterion_group!(benches, phone);
criterion_main!(benches);
