//! Timeout conversion for the Linux C++ ABI (SPEC §4).
//!
//! Linux VDI takes `time_t` timeouts where "INFINITE or any negative value" waits for ever
//! (the Linux header does not define INFINITE, so clients that define it themselves usually
//! pass `0xFFFFFFFF`, which we also treat as infinite).
//!
//! **The unit question.** Microsoft's Linux specification says milliseconds for both
//! GetConfiguration and GetCommand ("This is the time to wait, in milliseconds. Use INFINTE or a
//! negative value to wait indefinitely"), and its sample passes `GetConfiguration(10000)`, which
//! only makes sense in milliseconds. The same sample calls `GetCommand(90)` under the comment
//! "Timeout in seconds". We follow the written specification: **milliseconds by default for
//! both calls**, which is also what Windows does and what the rest of vdisim uses, so a timeout
//! means the same thing whichever ABI a client uses. A client written to the sample's comment
//! can be run with `VDISIM_TIMEOUT_UNIT=s` (GetCommand in seconds); `VDISIM_CONFIG_TIMEOUT_UNIT=s`
//! does the same for GetConfiguration. Note that the sample treats any GetCommand failure,
//! VD_E_TIMEOUT included, as the end of the transfer, so under the millisecond reading it
//! fails whenever the server pauses for more than 90 ms: a certification run reports exactly
//! that ("VD_E_TIMEOUT treated as fatal"), which is the point of certifying.
//!
//! The variables are read once per process, at the first call that needs them.

use std::sync::OnceLock;
use vdisim::vdi::INFINITE;

/// The unit a `time_t` timeout is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Milliseconds,
    Seconds,
}

/// Environment variable selecting the GetCommand unit (`ms`, the default, or `s`).
pub const COMMAND_UNIT_VAR: &str = "VDISIM_TIMEOUT_UNIT";
/// Environment variable selecting the GetConfiguration unit (`ms`, the default, or `s`).
pub const CONFIG_UNIT_VAR: &str = "VDISIM_CONFIG_TIMEOUT_UNIT";

/// Parses a unit name: `ms`/`milliseconds` or `s`/`sec`/`seconds` (case-insensitive).
pub fn parse_unit(value: &str) -> Option<Unit> {
    match value.trim().to_ascii_lowercase().as_str() {
        "ms" | "msec" | "millis" | "milliseconds" => Some(Unit::Milliseconds),
        "s" | "sec" | "secs" | "seconds" => Some(Unit::Seconds),
        _ => None,
    }
}

fn unit_from_env(var: &str) -> Unit {
    match std::env::var(var) {
        Err(_) => Unit::Milliseconds,
        Ok(v) if v.is_empty() => Unit::Milliseconds,
        Ok(v) => parse_unit(&v).unwrap_or_else(|| {
            eprintln!("vdisim-ffi: {var}={v:?} is neither `ms` nor `s`; using milliseconds");
            Unit::Milliseconds
        }),
    }
}

/// The unit of `ClientVirtualDevice::GetCommand` timeouts in this process.
pub fn command_unit() -> Unit {
    static UNIT: OnceLock<Unit> = OnceLock::new();
    *UNIT.get_or_init(|| unit_from_env(COMMAND_UNIT_VAR))
}

/// The unit of `ClientVirtualDeviceSet::GetConfiguration` timeouts in this process.
pub fn config_unit() -> Unit {
    static UNIT: OnceLock<Unit> = OnceLock::new();
    *UNIT.get_or_init(|| unit_from_env(CONFIG_UNIT_VAR))
}

/// Converts a Linux `time_t` timeout to the core's milliseconds ([`INFINITE`] = for ever):
/// negative values and anything at or above `0xFFFFFFFF` wait for ever; seconds are
/// multiplied out, saturating just below INFINITE so a huge finite value stays finite.
pub fn to_millis(timeout: i64, unit: Unit) -> u32 {
    if timeout < 0 || timeout >= i64::from(INFINITE) {
        return INFINITE;
    }
    let ms = match unit {
        Unit::Milliseconds => timeout as u64,
        Unit::Seconds => (timeout as u64).saturating_mul(1000),
    };
    ms.min(u64::from(INFINITE - 1)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_and_infinite_wait_for_ever() {
        for unit in [Unit::Milliseconds, Unit::Seconds] {
            assert_eq!(to_millis(-1, unit), INFINITE);
            assert_eq!(to_millis(i64::MIN, unit), INFINITE);
            assert_eq!(to_millis(0xFFFF_FFFF, unit), INFINITE);
            assert_eq!(to_millis(i64::MAX, unit), INFINITE);
        }
    }

    #[test]
    fn units_convert() {
        assert_eq!(to_millis(0, Unit::Milliseconds), 0);
        assert_eq!(to_millis(0, Unit::Seconds), 0);
        assert_eq!(to_millis(90, Unit::Milliseconds), 90);
        assert_eq!(to_millis(90, Unit::Seconds), 90_000);
        // Large finite second counts saturate below INFINITE instead of wrapping.
        assert_eq!(to_millis(5_000_000, Unit::Seconds), INFINITE - 1);
    }

    #[test]
    fn unit_names_parse() {
        assert_eq!(parse_unit("ms"), Some(Unit::Milliseconds));
        assert_eq!(parse_unit(" S "), Some(Unit::Seconds));
        assert_eq!(parse_unit("seconds"), Some(Unit::Seconds));
        assert_eq!(parse_unit("minutes"), None);
    }
}
