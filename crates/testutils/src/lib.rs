//! Builders for test and benchmark data, kept out of the shipped library: Mixxx databases of
//! every schema era, git-annex repositories, and large generated collections. They build on
//! the product's samples (`music_commander::mixxx::sample`, `music_commander::annex::sample`),
//! so the tests, the benchmark and `music-commander demo` exercise the same shapes.

pub mod annex_repo;
pub mod beats;
pub mod library;
pub mod mixxx_db;
