//! Allocations in the store: one key per allocated item under a pool's prefix, made
//! with the store's `create`, so that two API servers can never both take an item — the
//! second create finds the key and moves on. No global lock, no bitmap to
//! compare-and-swap: contention is per item.
//!
//! Each key's value records who holds the item (namespace, name and uid of the
//! Service) and when it was taken: releases check the uid, so that a late release never
//! frees an item someone else took meanwhile, and the repair pass waits out a grace
//! period before it frees an item no Service names (its create may still be on the way).

use std::collections::HashSet;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use store::{AnyStore, Store};

/// Dynamic allocation first tries this many random items of the preferred band before
/// it lists what is taken: in a sparse range (the usual case) one store write is all a
/// new Service costs.
const RANDOM_PROBES: usize = 3;
/// Page size when listing a pool.
const LIST_PAGE: usize = 1000;

/// A range of allocatable items, numbered from 0.
pub(crate) trait Slots {
    /// How many items the range holds.
    fn len(&self) -> u32;
    /// The size of the lower band kept for requested items while the upper band has
    /// room (upstream's range offset).
    fn static_band(&self) -> u32;
    /// Items dynamic allocation never hands out (they are only ever requested).
    fn reserved(&self, index: u32) -> bool;
    /// The item's name in the store key (an address, a port number).
    fn name(&self, index: u32) -> String;
}

/// Who holds an item, stored as the value of its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// Seconds since the epoch when the item was taken.
    pub allocated_at: i64,
}

/// One allocation read from the store.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The item's name (the key without the pool prefix).
    pub item: String,
    /// Its holder; None if the value does not parse (the repair pass frees those).
    pub holder: Option<Holder>,
    pub mod_revision: i64,
}

/// A pool: the keys under one prefix.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pool {
    pub prefix: &'static str,
}

/// A random number below `n` (0 when `n` is 0); uuid's generator is already in the
/// tree and good enough to spread starting points.
pub(crate) fn random_below(n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    u32::try_from(uuid::Uuid::new_v4().as_u128() % u128::from(n)).unwrap_or(0)
}

/// The order dynamic allocation tries items in, as upstream: the upper band from a
/// random start, wrapping around, then the lower (static) band likewise. Reserved items
/// never come up.
pub(crate) fn dynamic_order<S: Slots>(
    slots: &S,
    upper_start: u32,
    lower_start: u32,
) -> impl Iterator<Item = u32> + '_ {
    let len = slots.len();
    let band = slots.static_band().min(len);
    let upper = len - band;
    let upper_items = (0..upper).map(move |i| band + (upper_start % upper + i) % upper);
    let lower_items = (0..band).map(move |i| (lower_start % band + i) % band);
    upper_items
        .chain(lower_items)
        .filter(move |i| !slots.reserved(*i))
}

impl Pool {
    fn key(&self, item: &str) -> Vec<u8> {
        format!("{}{item}", self.prefix).into_bytes()
    }

    /// Takes `item` for `holder`: false if someone holds it already.
    pub async fn claim(
        &self,
        store: &AnyStore,
        item: &str,
        holder: &Holder,
    ) -> Result<bool, store::Error> {
        let value = serde_json::to_vec(holder)
            .map_err(|e| store::Error::Backend(format!("encoding an allocation: {e}")))?;
        match store
            .create(&self.key(item), Bytes::from(value), None)
            .await
        {
            Ok(_) => Ok(true),
            Err(store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Takes some free item of `slots` for `holder`, in upstream's order; None when
    /// every item is taken.
    pub async fn claim_next<S: Slots>(
        &self,
        store: &AnyStore,
        slots: &S,
        holder: &Holder,
    ) -> Result<Option<String>, store::Error> {
        let band = slots.static_band().min(slots.len());
        let upper = slots.len() - band;
        if upper > 0 {
            for _ in 0..RANDOM_PROBES {
                let index = band + random_below(upper);
                if slots.reserved(index) {
                    continue;
                }
                let item = slots.name(index);
                if self.claim(store, &item, holder).await? {
                    return Ok(Some(item));
                }
            }
        }
        let taken: HashSet<String> = self
            .list(store, 0)
            .await?
            .0
            .into_iter()
            .map(|e| e.item)
            .collect();
        let order = dynamic_order(slots, random_below(upper), random_below(band));
        for index in order {
            let item = slots.name(index);
            if taken.contains(&item) {
                continue;
            }
            // Another API server may have taken it since the list: then try the next.
            if self.claim(store, &item, holder).await? {
                return Ok(Some(item));
            }
        }
        Ok(None)
    }

    /// Frees `item` if `uid` still holds it; true if it did.
    pub async fn release(
        &self,
        store: &AnyStore,
        item: &str,
        uid: &str,
    ) -> Result<bool, store::Error> {
        let key = self.key(item);
        let kv = match store.get(&key).await {
            Ok(kv) => kv,
            Err(store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let holder: Option<Holder> = serde_json::from_slice(&kv.value).ok();
        if holder.is_none_or(|h| h.uid != uid) {
            return Ok(false);
        }
        self.delete(store, item, kv.mod_revision).await
    }

    /// Deletes `item`'s key if it is still at `mod_revision`; true if it went.
    pub async fn delete(
        &self,
        store: &AnyStore,
        item: &str,
        mod_revision: i64,
    ) -> Result<bool, store::Error> {
        match store
            .delete(&self.key(item), Some(mod_revision), None)
            .await
        {
            Ok(_) => Ok(true),
            Err(store::Error::Conflict { .. } | store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Rewrites `item`'s holder if the key is still at `mod_revision`.
    pub async fn reassign(
        &self,
        store: &AnyStore,
        item: &str,
        holder: &Holder,
        mod_revision: i64,
    ) -> Result<bool, store::Error> {
        let value = serde_json::to_vec(holder)
            .map_err(|e| store::Error::Backend(format!("encoding an allocation: {e}")))?;
        match store
            .update(&self.key(item), Bytes::from(value), mod_revision, None)
            .await
        {
            Ok(_) => Ok(true),
            Err(store::Error::Conflict { .. } | store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every allocation, at `revision` (0: now); returns them and the revision read.
    pub async fn list(
        &self,
        store: &AnyStore,
        revision: i64,
    ) -> Result<(Vec<Entry>, i64), store::Error> {
        let mut entries = Vec::new();
        let mut at = revision;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = store
                .list(self.prefix.as_bytes(), at, LIST_PAGE, after.as_deref())
                .await?;
            at = page.revision;
            for kv in &page.items {
                let item = String::from_utf8_lossy(&kv.key[self.prefix.len()..]).into_owned();
                entries.push(Entry {
                    item,
                    holder: serde_json::from_slice(&kv.value).ok(),
                    mod_revision: kv.mod_revision,
                });
            }
            match (page.more, page.items.last()) {
                (true, Some(last)) => after = Some(last.key.to_vec()),
                _ => return Ok((entries, at)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocator::{IpRange, PortRange};

    #[test]
    fn dynamic_order_prefers_the_upper_band_and_skips_reserved() {
        let r: IpRange = "10.0.0.0/24".parse().expect("range");
        // 254 usable addresses, a static band of 16.
        let order: Vec<u32> = dynamic_order(&r, 0, 0).collect();
        assert_eq!(order.len(), 254 - 2);
        assert_eq!(order[0], 16);
        assert_eq!(order[237], 253);
        assert_eq!(&order[238..240], &[1, 2]);
        assert!(!order.contains(&0) && !order.contains(&9));
        let wrapped: Vec<u32> = dynamic_order(&r, 5, 3).take(1).collect();
        assert_eq!(wrapped, [21]);
        let lower: Vec<u32> = dynamic_order(&r, 0, 3).skip(238).take(3).collect();
        assert_eq!(lower, [3, 4, 5]);

        let tiny: IpRange = "10.0.0.0/29".parse().expect("tiny");
        let all: Vec<String> = dynamic_order(&tiny, 2, 0).map(|i| tiny.name(i)).collect();
        assert_eq!(
            all,
            ["10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.2"]
        );

        let ports: PortRange = "30000-30009".parse().expect("ports");
        assert_eq!(dynamic_order(&ports, 7, 0).count(), 10);
    }

    #[test]
    fn random_below_stays_below() {
        assert_eq!(random_below(0), 0);
        assert!((0..100).all(|_| random_below(7) < 7));
    }
}
