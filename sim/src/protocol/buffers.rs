//! The server's buffer-area allocator (SPEC §1.4 AllocateBuffer/FreeBuffer): offsets only.
//!
//! Each allocation reserves the configured prefix zone directly before its aligned data
//! start ("prefix zone hidden before the address").

use crate::vdi::{VdError, VdResult};
use std::collections::BTreeMap;

/// A first-fit allocator over `[0, size)`.
#[derive(Debug, Clone)]
pub struct BufferAllocator {
    size: u64,
    prefix: u64,
    /// Free ranges, start → end, non-overlapping and coalesced.
    free: BTreeMap<u64, u64>,
    /// Live allocations: data offset → (range start, range end).
    live: BTreeMap<u64, (u64, u64)>,
}

impl BufferAllocator {
    pub fn new(size: u64, prefix: u32) -> Self {
        let mut free = BTreeMap::new();
        if size > 0 {
            free.insert(0, size);
        }
        BufferAllocator {
            size,
            prefix: u64::from(prefix),
            free,
            live: BTreeMap::new(),
        }
    }

    /// Allocates `size` data bytes aligned to `alignment` (a power of two) with the prefix
    /// zone before them. Returns the data offset. VD_E_INVALID for bad arguments,
    /// VD_E_MEMORY when no free range fits.
    pub fn allocate(&mut self, size: u64, alignment: u64) -> VdResult<u64> {
        if size == 0 || !alignment.is_power_of_two() || size > self.size {
            return Err(VdError::Invalid);
        }
        let fit = self.free.iter().find_map(|(&start, &end)| {
            let data = start.checked_add(self.prefix)?.checked_next_multiple_of(alignment)?;
            let data_end = data.checked_add(size)?;
            (data_end <= end).then_some((start, end, data, data_end))
        });
        let (start, end, data, data_end) = fit.ok_or(VdError::Memory)?;
        self.free.remove(&start);
        let range_start = data - self.prefix;
        if range_start > start {
            self.free.insert(start, range_start);
        }
        if data_end < end {
            self.free.insert(data_end, end);
        }
        self.live.insert(data, (range_start, data_end));
        Ok(data)
    }

    /// Frees the allocation whose data starts at `offset` and is `size` bytes long
    /// (FreeBuffer(p, size)). VD_E_INVALID if there is no such allocation.
    pub fn free(&mut self, offset: u64, size: u64) -> VdResult<()> {
        match self.live.get(&offset) {
            Some(&(start, end)) if end - offset == size => {
                self.live.remove(&offset);
                self.insert_free(start, end);
                Ok(())
            }
            _ => Err(VdError::Invalid),
        }
    }

    /// Whether `offset` is the data start of a live allocation (IsSharedBuffer).
    pub fn is_allocated(&self, offset: u64) -> bool {
        self.live.contains_key(&offset)
    }

    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    fn insert_free(&mut self, mut start: u64, mut end: u64) {
        if let Some((&s, &e)) = self.free.range(..start).next_back() {
            if e == start {
                self.free.remove(&s);
                start = s;
            }
        }
        if let Some(&e) = self.free.get(&end) {
            self.free.remove(&end);
            end = e;
        }
        self.free.insert(start, end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prefix_and_alignment() {
        let mut a = BufferAllocator::new(1 << 20, 100);
        let x = a.allocate(4096, 4096).unwrap();
        assert_eq!(x % 4096, 0);
        assert!(x >= 100);
        let y = a.allocate(512, 512).unwrap();
        assert!(y + 512 + 100 <= x || y >= x + 4096 + 100, "prefix zones never overlap");
        assert_eq!(a.free(x, 4095), Err(VdError::Invalid));
        assert_eq!(a.free(x, 4096), Ok(()));
        assert_eq!(a.free(x, 4096), Err(VdError::Invalid), "double free");
        assert_eq!(a.allocate(2 << 20, 512), Err(VdError::Invalid));
        assert_eq!(a.allocate(1, 3), Err(VdError::Invalid));
    }

    #[test]
    fn exhausts_then_recovers() {
        let mut a = BufferAllocator::new(4 * 65536, 0);
        let v: Vec<u64> = (0..4).map(|_| a.allocate(65536, 512).unwrap()).collect();
        assert_eq!(a.allocate(512, 512), Err(VdError::Memory));
        for o in v {
            a.free(o, 65536).unwrap();
        }
        assert_eq!(a.allocate(4 * 65536, 512), Ok(0), "coalesced back to one range");
    }

    proptest! {
        #[test]
        fn allocations_never_overlap(ops in proptest::collection::vec((1u64..70000, 0u32..4, any::<bool>()), 1..60)) {
            let mut a = BufferAllocator::new(1 << 20, 64);
            let mut live: Vec<(u64, u64)> = Vec::new();
            for (size, align_pow, free_one) in ops {
                if free_one && !live.is_empty() {
                    let (o, s) = live.remove(0);
                    prop_assert_eq!(a.free(o, s), Ok(()));
                } else if let Ok(o) = a.allocate(size, 512 << align_pow) {
                    prop_assert_eq!(o % (512 << align_pow), 0);
                    prop_assert!(o + size <= 1 << 20);
                    for &(p, ps) in &live {
                        prop_assert!(o + size + 64 <= p || p + ps + 64 <= o, "overlap with prefix");
                    }
                    live.push((o, size));
                }
            }
        }
    }
}
