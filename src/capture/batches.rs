//! The store's index is one row per written batch, not one per exchange: a batch's
//! lines are contiguous in one lines file, and its row lists, packed, each line's
//! id, offset and length. A row per exchange made SQLite's insert the largest cost
//! of `--store` for small alerts (measured in the same rounds, 1 KB alerts: 0.85 of
//! `--record`'s requests/s with a row per exchange, 0.89 with a row per batch of
//! about fifty; what is left is the transaction itself).
//!
//! Ids are given as requests arrive and batches are written as answers are sent,
//! so the id ranges of two batches may overlap: reading in id order merges them
//! ([`Merge`]). Pure: no SQL, no files.

use std::collections::BinaryHeap;

/// One line of a batch: its exchange id, where it starts from the batch's first
/// byte, its length without the newline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub id: u64,
    pub offset: u64,
    pub length: u64,
}

const ENTRY_BYTES: usize = 24;

/// The entries packed as the row keeps them (24 bytes each, little-endian).
pub fn pack(entries: &[Entry]) -> Vec<u8> {
    let mut packed = Vec::with_capacity(entries.len() * ENTRY_BYTES);
    for entry in entries {
        packed.extend_from_slice(&entry.id.to_le_bytes());
        packed.extend_from_slice(&entry.offset.to_le_bytes());
        packed.extend_from_slice(&entry.length.to_le_bytes());
    }
    packed
}

/// The entries of a packed row; a row that is not a whole number of entries is
/// read as far as it is whole.
pub fn unpack(packed: &[u8]) -> Vec<Entry> {
    packed
        .chunks_exact(ENTRY_BYTES)
        .map(|chunk| {
            let number =
                |at: usize| u64::from_le_bytes(chunk[at..at + 8].try_into().unwrap_or_default());
            Entry {
                id: number(0),
                offset: number(8),
                length: number(16),
            }
        })
        .collect()
}

/// Which way a [`Merge`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Newest first: batches are given by their highest id, descending.
    Descending,
    /// Oldest first: batches are given by their lowest id, ascending.
    Ascending,
}

/// Entries of batches in exact id order, from batches given in the order of their
/// bound (highest id descending, or lowest id ascending): an entry is released once
/// no batch still to come can hold one before it.
pub struct Merge<T> {
    order: Order,
    pending: BinaryHeap<Key<T>>,
}

/// An entry waiting in the merge with what it came with, ordered by id (the
/// highest first when descending).
struct Key<T> {
    descending: bool,
    entry: Entry,
    with: T,
}

impl<T> Key<T> {
    fn rank(&self) -> i128 {
        let id = i128::from(self.entry.id);
        if self.descending { id } else { -id }
    }
}

impl<T> PartialEq for Key<T> {
    fn eq(&self, other: &Key<T>) -> bool {
        self.rank() == other.rank()
    }
}

impl<T> Eq for Key<T> {}

impl<T> PartialOrd for Key<T> {
    fn partial_cmp(&self, other: &Key<T>) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Key<T> {
    fn cmp(&self, other: &Key<T>) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl<T: Clone> Merge<T> {
    pub fn new(order: Order) -> Merge<T> {
        Merge {
            order,
            pending: BinaryHeap::new(),
        }
    }

    /// Releases the entries that come before any entry of a batch whose bound is
    /// `bound` (its highest id when descending, its lowest when ascending).
    pub fn release_before(&mut self, bound: u64) -> Vec<(Entry, T)> {
        let mut released = Vec::new();
        while let Some(next) = self.pending.peek() {
            let before = match self.order {
                Order::Descending => next.entry.id > bound,
                Order::Ascending => next.entry.id < bound,
            };
            if !before {
                break;
            }
            if let Some(key) = self.pending.pop() {
                released.push((key.entry, key.with));
            }
        }
        released
    }

    /// Adds a batch's entries, each with `with` (what is needed to read it).
    pub fn add(&mut self, entries: impl IntoIterator<Item = Entry>, with: &T) {
        let descending = self.order == Order::Descending;
        self.pending.extend(entries.into_iter().map(|entry| Key {
            descending,
            entry,
            with: with.clone(),
        }));
    }

    /// Everything still waiting, in order: once every batch has been added.
    pub fn release_all(&mut self) -> Vec<(Entry, T)> {
        let mut released = Vec::with_capacity(self.pending.len());
        while let Some(key) = self.pending.pop() {
            released.push((key.entry, key.with));
        }
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(ids: &[u64]) -> Vec<Entry> {
        ids.iter()
            .map(|&id| Entry {
                id,
                offset: 0,
                length: 1,
            })
            .collect()
    }

    #[test]
    fn a_packed_row_reads_back_the_same() {
        let written = vec![
            Entry {
                id: 7,
                offset: 0,
                length: 10,
            },
            Entry {
                id: u64::MAX,
                offset: 11,
                length: u64::MAX,
            },
        ];
        assert_eq!(unpack(&pack(&written)), written);
        assert_eq!(unpack(&pack(&written)[..30]), written[..1], "a cut row");
    }

    /// The ids of `batches` as a merge gives them, batches handed over in `order`'s way.
    fn merged(batches: &[Vec<u64>], order: Order) -> Vec<u64> {
        // A batch's bound: its highest id newest first, its lowest oldest first.
        let bound = |ids: &Vec<u64>| match order {
            Order::Descending => *ids.iter().max().unwrap(),
            Order::Ascending => *ids.iter().min().unwrap(),
        };
        let mut given: Vec<&Vec<u64>> = batches.iter().collect();
        given.sort_by_key(|ids| bound(ids));
        if order == Order::Descending {
            given.reverse();
        }
        let mut merge = Merge::new(order);
        let mut seen = Vec::new();
        for ids in given {
            let released = merge.release_before(bound(ids));
            seen.extend(released.into_iter().map(|(entry, ())| entry.id));
            merge.add(entries(ids), &());
        }
        seen.extend(merge.release_all().into_iter().map(|(entry, ())| entry.id));
        seen
    }

    /// Batches that overlap (a slow request answered with later ones) come out in
    /// exact id order both ways.
    #[test]
    fn overlapping_batches_merge_in_id_order() {
        let batches = vec![vec![1, 2, 3], vec![5, 4, 9], vec![6, 7, 8], vec![10]];
        assert_eq!(
            merged(&batches, Order::Descending),
            (1..=10).rev().collect::<Vec<u64>>()
        );
        assert_eq!(
            merged(&batches, Order::Ascending),
            (1..=10).collect::<Vec<u64>>()
        );
    }
}
