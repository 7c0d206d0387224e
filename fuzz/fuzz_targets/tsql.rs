//! Fuzz target (b): the T-SQL parser must return Ok or an SqlError for any text, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(statements) = vdisim::engine::tsql::parse_batch(&text) {
        // Whatever parsed must also render (Debug walks every field).
        let _ = format!("{statements:?}");
    }
});
