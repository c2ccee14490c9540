//! Sharded evaluation: which shards this instance should hold (rendezvous hashing over the
//! live members), and the shards it holds under its lease.
//!
//! The instance's scheduler holds one lease (a row of its own, renewed in one write) that
//! carries a watermark, `claimed_until`: it evaluates only slots before it, on every shard
//! it holds, and a new holder of a shard only slots from the previous holder's watermark on.
//! Slots are thereby claimed before they are evaluated, in batches as the lease is renewed,
//! and a change of holder never evaluates a slot twice: a graceful hand-over lowers the
//! shard's watermark to just past the last slot started, a holder that died leaves it at
//! most one renewal ahead of its last evaluation.

use std::collections::{BTreeMap, HashSet};

use sha2::{Digest, Sha256};

use crate::store::ShardClaim;
use crate::{OrgId, RuleUid};

/// The shard of a rule.
pub(crate) fn shard_of(org: OrgId, uid: &RuleUid, shards: u32) -> u32 {
    let digest = Sha256::new()
        .chain_update(org.0.to_be_bytes())
        .chain_update(uid.as_str().as_bytes())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    u32::try_from(u64::from_be_bytes(bytes) % u64::from(shards.max(1))).unwrap_or(0)
}

/// The member that should hold `shard`: the one with the highest hash of (member, shard).
pub(crate) fn owner(shard: u32, members: &[String]) -> Option<&str> {
    members
        .iter()
        .max_by_key(|member| {
            let digest = Sha256::new()
                .chain_update(member.as_bytes())
                .chain_update(shard.to_be_bytes())
                .finalize();
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
            u64::from_be_bytes(bytes)
        })
        .map(String::as_str)
}

/// A shard this instance holds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Held {
    pub(crate) claim: ShardClaim,
    /// The latest slot started on the shard's rules, plus one (the hand-over watermark).
    pub(crate) started_until: i64,
}

/// The shards held, by number, and the lease they are held under.
#[derive(Debug, Default)]
pub(crate) struct Shards {
    pub(crate) held: BTreeMap<u32, Held>,
    /// The lease's watermark: slots before it may be evaluated (0 while there is no lease).
    pub(crate) claimed_until: i64,
}

impl Shards {
    /// Whether a slot of a rule in `shard` may be evaluated here; records it as started.
    pub(crate) fn permit(&mut self, shard: u32, slot: i64) -> bool {
        match self.held.get_mut(&shard) {
            Some(held) if slot >= held.claim.start && slot < self.claimed_until => {
                held.started_until = held.started_until.max(slot.saturating_add(1));
                true
            }
            _ => false,
        }
    }

    /// The shards this instance should hold given the live members.
    pub(crate) fn desired(me: &str, members: &[String], shards: u32) -> HashSet<u32> {
        (0..shards)
            .filter(|shard| owner(*shard, members) == Some(me))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_spreads_and_moves_little() {
        let three: Vec<String> = ["a", "b", "c"].iter().map(|s| (*s).to_owned()).collect();
        let two: Vec<String> = ["a", "b"].iter().map(|s| (*s).to_owned()).collect();
        let mut counts = BTreeMap::new();
        for shard in 0..64 {
            *counts.entry(owner(shard, &three).unwrap()).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 3, "every member owns shards: {counts:?}");
        assert!(counts.values().all(|n| *n >= 10), "{counts:?}");
        // Removing c moves only c's shards.
        for shard in 0..64 {
            let before = owner(shard, &three).unwrap();
            if before != "c" {
                assert_eq!(owner(shard, &two), Some(before));
            }
        }
        let mut shards = Shards {
            claimed_until: 200,
            ..Shards::default()
        };
        shards.held.insert(
            3,
            Held {
                claim: ShardClaim {
                    shard: 3,
                    token: 1,
                    start: 100,
                },
                started_until: 100,
            },
        );
        assert!(!shards.permit(3, 99));
        assert!(shards.permit(3, 150));
        assert!(!shards.permit(3, 200));
        assert!(!shards.permit(4, 150));
        assert_eq!(shards.held[&3].started_until, 151);
        assert!(shard_of(OrgId(1), &RuleUid::from("x"), 64) < 64);
    }
}
