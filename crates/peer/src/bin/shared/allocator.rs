//! The daemons' allocator: jemalloc, configured at build time by
//! `.cargo/config.toml`. Why: glibc's malloc (one arena lock, many
//! threads) was ~13% of the writing peer's CPU under ingest; with jemalloc
//! batched ingest measured ~20% faster at the same RSS (spec/crdt.md §8).

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
