//! Fuzz target (a): a hostile peer writing arbitrary values into a real mapped set, mixed
//! with the honest client's and server's calls (vdi_conformance::props::hostile). No input
//! may make either honest side panic, read out of bounds, or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vdi_conformance::props::hostile::run(data);
});
