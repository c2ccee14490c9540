//! The conformance suite of [`AlertStore`].
//!
//! Each function takes two or more handles on one shared store, standing for instances of a
//! cluster, writes through one and reads through another, and panics when the
//! implementation breaks a promise of the trait. Each works in an org of its own; [`all`]
//! runs them one after another.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::{
    AlertInstance, AlertQuery, AlertStore, Error, FolderUid, GroupRule, GroupWriter, InstanceState,
    InstanceWrite, NewRule, OrgId, Provenance, ReplaceGroup, RuleFilter, RuleSpec, RuleStatus,
    RuleUid, UpdateRule,
};

/// Runs every case.
pub async fn all(stores: Vec<Arc<dyn AlertStore>>) {
    assert!(
        stores.len() >= 2,
        "the suite needs two handles on one store"
    );
    rules_are_compare_and_swapped(&stores).await;
    provenance_protects_provisioned_rules(&stores).await;
    groups_are_replaced_idempotently(&stores).await;
    instance_writes_never_go_backwards(&stores).await;
    shard_leases_hand_slots_over_without_overlap(&stores).await;
}

/// A small valid rule.
pub fn spec(title: &str) -> RuleSpec {
    RuleSpec {
        title: title.to_owned(),
        condition: "A".to_owned(),
        data: vec![AlertQuery {
            ref_id: "A".to_owned(),
            datasource_uid: "__expr__".to_owned(),
            model: json!({"type": "math", "expression": "1"})
                .as_object()
                .cloned()
                .unwrap(),
            ..AlertQuery::default()
        }],
        ..RuleSpec::default()
    }
}

fn new_rule(org: i64, uid: &str, title: &str, provenance: Provenance) -> NewRule {
    NewRule {
        org_id: OrgId(org),
        uid: Some(RuleUid::from(uid)),
        folder_uid: FolderUid::from("folder"),
        rule_group: "group".to_owned(),
        spec: spec(title),
        provenance,
        default_interval_seconds: 60,
    }
}

/// Creation, lookups across handles, uniqueness, and racing updates of one version.
pub async fn rules_are_compare_and_swapped(stores: &[Arc<dyn AlertStore>]) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = OrgId(7001);
    let created = a
        .create_rule(new_rule(org.0, "r1", "First", Provenance::Api))
        .await
        .unwrap();
    assert_eq!(
        (
            created.version,
            created.interval_seconds,
            created.group_index
        ),
        (1, 60, 1)
    );
    let read = b
        .get_rule(org, &RuleUid::from("r1"))
        .await
        .unwrap()
        .expect("seen by the other handle");
    assert_eq!(read.spec, created.spec);
    assert!(matches!(
        b.create_rule(new_rule(org.0, "r1", "Other", Provenance::Api))
            .await,
        Err(Error::UidTaken)
    ));
    assert!(matches!(
        b.create_rule(new_rule(org.0, "r2", "First", Provenance::Api))
            .await,
        Err(Error::TitleTaken)
    ));
    // A second rule joins the group with its interval and the next index.
    let second = b
        .create_rule(new_rule(org.0, "r2", "Second", Provenance::Api))
        .await
        .unwrap();
    assert_eq!((second.interval_seconds, second.group_index), (60, 2));

    // Ten writers race to update version 1: exactly one commits.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = stores[i % stores.len()].clone();
        tasks.push(tokio::spawn(async move {
            store
                .update_rule(UpdateRule {
                    org_id: org,
                    uid: RuleUid::from("r1"),
                    folder_uid: FolderUid::from("folder"),
                    rule_group: "group".to_owned(),
                    spec: spec(&format!("First v{i}")),
                    provenance: Provenance::Api,
                    expected_version: Some(1),
                    default_interval_seconds: 60,
                })
                .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(rule) => {
                won += 1;
                assert_eq!(rule.version, 2);
            }
            Err(Error::VersionMismatch) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(won, 1, "exactly one racing update of one version commits");
    let versions = a.rule_versions(org, &RuleUid::from("r1")).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1]
    );
    assert!(versions[0].rule.spec.title.starts_with("First v"));
    assert!(matches!(
        a.update_rule(UpdateRule {
            org_id: org,
            uid: RuleUid::from("missing"),
            folder_uid: FolderUid::from("folder"),
            rule_group: "group".to_owned(),
            spec: spec("x"),
            provenance: Provenance::Api,
            expected_version: None,
            default_interval_seconds: 60,
        })
        .await,
        Err(Error::RuleNotFound)
    ));
    let before = a.rules_fingerprint().await.unwrap();
    a.delete_rule(org, &RuleUid::from("r2"), Provenance::Api)
        .await
        .unwrap();
    assert_ne!(a.rules_fingerprint().await.unwrap(), before);
    assert!(
        b.get_rule(org, &RuleUid::from("r2"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        a.delete_rule(org, &RuleUid::from("r2"), Provenance::Api)
            .await
            .unwrap()
            .is_none()
    );
}

/// A rule provisioned from a file refuses the API's changes and deletion.
pub async fn provenance_protects_provisioned_rules(stores: &[Arc<dyn AlertStore>]) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = OrgId(7002);
    a.create_rule(new_rule(org.0, "file1", "From a file", Provenance::File))
        .await
        .unwrap();
    let update = UpdateRule {
        org_id: org,
        uid: RuleUid::from("file1"),
        folder_uid: FolderUid::from("folder"),
        rule_group: "group".to_owned(),
        spec: spec("Changed"),
        provenance: Provenance::Api,
        expected_version: None,
        default_interval_seconds: 60,
    };
    let err = b.update_rule(update.clone()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot change provenance from 'file' to 'api'"
    );
    let err = b
        .delete_rule(org, &RuleUid::from("file1"), Provenance::Api)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot delete with provided provenance 'api', needs 'file'"
    );
    let err = b
        .delete_group(org, &FolderUid::from("folder"), "group", GroupWriter::Ruler)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ProvisionedGroup(_)), "{err}");
    assert_eq!(
        a.get_rule(org, &RuleUid::from("file1"))
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    b.update_rule(UpdateRule {
        provenance: Provenance::File,
        ..update
    })
    .await
    .unwrap();
}

/// A group written twice is written once; rules it stops listing are deleted.
pub async fn groups_are_replaced_idempotently(stores: &[Arc<dyn AlertStore>]) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = OrgId(7003);
    let group = |titles: &[&str]| ReplaceGroup {
        org_id: org,
        folder_uid: FolderUid::from("folder"),
        title: "g".to_owned(),
        interval_seconds: 30,
        rules: Some(
            titles
                .iter()
                .map(|t| GroupRule {
                    uid: Some(RuleUid::from(format!("uid-{t}"))),
                    spec: spec(t),
                })
                .collect(),
        ),
        writer: GroupWriter::Provisioning(Provenance::File),
    };
    let first = a.replace_group(group(&["one", "two"])).await.unwrap();
    assert_eq!(first.created.len(), 2);
    let again = b.replace_group(group(&["one", "two"])).await.unwrap();
    assert!(
        again.is_empty(),
        "replaying a group changes nothing: {again:?}"
    );
    let shrunk = b.replace_group(group(&["two"])).await.unwrap();
    assert_eq!(shrunk.deleted, [RuleUid::from("uid-one")]);
    assert_eq!(
        shrunk.updated,
        [RuleUid::from("uid-two")],
        "its index moved"
    );
    let rules = a
        .list_rules(RuleFilter {
            org_id: Some(org),
            ..RuleFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(
        (rules[0].interval_seconds, rules[0].provenance),
        (30, Provenance::File)
    );
    let ruler = ReplaceGroup {
        writer: GroupWriter::Ruler,
        ..group(&["two"])
    };
    assert!(matches!(
        a.replace_group(ruler).await,
        Err(Error::ProvisionedGroup(_))
    ));
    let interval_only = ReplaceGroup {
        interval_seconds: 90,
        rules: None,
        ..group(&[])
    };
    assert_eq!(
        a.replace_group(interval_only).await.unwrap().updated.len(),
        1
    );
    assert_eq!(
        b.delete_group(
            org,
            &FolderUid::from("folder"),
            "g",
            GroupWriter::Provisioning(Provenance::File)
        )
        .await
        .unwrap(),
        [RuleUid::from("uid-two")]
    );
    assert!(matches!(
        b.delete_group(org, &FolderUid::from("folder"), "g", GroupWriter::Ruler)
            .await,
        Err(Error::GroupNotFound)
    ));
}

fn instance(org: OrgId, state: InstanceState, slot: i64) -> AlertInstance {
    AlertInstance {
        org_id: org,
        rule_uid: RuleUid::from("rule"),
        fingerprint: "00000000000000aa".to_owned(),
        labels: [("alertname".to_owned(), "x".to_owned())].into(),
        state,
        started_at: slot,
        last_slot: slot,
        last_eval_at: slot,
        values: [("B".to_owned(), Some(1.5))].into(),
        written_at: slot,
        ..AlertInstance::default()
    }
}

/// Instance writes apply only over older slots; statuses likewise.
pub async fn instance_writes_never_go_backwards(stores: &[Arc<dyn AlertStore>]) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = OrgId(7004);
    let write = |state, slot| InstanceWrite {
        org_id: org,
        rule_uid: RuleUid::from("rule"),
        slot,
        upserts: vec![instance(org, state, slot)],
        deletes: Vec::new(),
        expected: Default::default(),
        history: None,
    };
    assert!(
        a.write_instances(write(InstanceState::Pending, 10_000))
            .await
            .unwrap()
    );
    assert!(
        !b.write_instances(write(InstanceState::Normal, 5_000))
            .await
            .unwrap(),
        "an older slot is refused"
    );
    assert!(
        !b.write_instances(write(InstanceState::Normal, 10_000))
            .await
            .unwrap(),
        "the same slot is refused"
    );
    assert!(
        b.write_instances(write(InstanceState::Alerting, 20_000))
            .await
            .unwrap()
    );
    let read = a
        .load_instances(org, &[RuleUid::from("rule")])
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(
        (read[0].state, read[0].last_slot),
        (InstanceState::Alerting, 20_000)
    );
    assert_eq!(read[0].values["B"], Some(1.5));
    a.mark_sent(org, &RuleUid::from("rule"), "00000000000000aa", 21_000)
        .await
        .unwrap();
    assert_eq!(
        b.list_instances(Some(org)).await.unwrap()[0].last_sent_at,
        Some(21_000)
    );
    let delete_old = InstanceWrite {
        org_id: org,
        rule_uid: RuleUid::from("rule"),
        slot: 15_000,
        upserts: Vec::new(),
        deletes: vec!["00000000000000aa".to_owned()],
        expected: Default::default(),
        history: None,
    };
    b.write_instances(delete_old.clone()).await.unwrap();
    assert_eq!(
        a.list_instances(Some(org)).await.unwrap().len(),
        1,
        "an older slot deletes nothing"
    );
    b.write_instances(InstanceWrite {
        slot: 30_000,
        ..delete_old
    })
    .await
    .unwrap();
    assert!(a.list_instances(Some(org)).await.unwrap().is_empty());

    let status = |slot| RuleStatus {
        org_id: org,
        rule_uid: RuleUid::from("rule"),
        last_slot: slot,
        health: "ok".to_owned(),
        written_at: slot,
        ..RuleStatus::default()
    };
    assert!(a.write_status(status(10)).await.unwrap());
    assert!(!b.write_status(status(5)).await.unwrap());
    assert!(b.write_status(status(20)).await.unwrap());
    assert_eq!(a.list_statuses(org).await.unwrap()[0].last_slot, 20);
}

/// One holder at a time; a new holder starts where the previous one's claim ended; an
/// expired lease is taken over and can no longer be renewed.
pub async fn shard_leases_hand_slots_over_without_overlap(stores: &[Arc<dyn AlertStore>]) {
    let (a, b) = (&stores[0], &stores[1]);
    let shard = 9_001;
    let name = |who: &str| format!("{who}/{:08x}", rand::random::<u32>());
    let (ha, hb) = (name("a"), name("b"));
    let lease_a = a.register_holder(&ha, 60_000, 1_000).await.unwrap();
    b.register_holder(&hb, 60_000, 1_000).await.unwrap();
    let first = a
        .claim_shard(shard, &ha)
        .await
        .unwrap()
        .expect("a free shard");
    assert!(b.claim_shard(shard, &hb).await.unwrap().is_none(), "held");
    let renewed = a
        .renew_holder(&ha, 60_000, 2_000)
        .await
        .unwrap()
        .expect("a live lease is renewed");
    assert!(renewed.claimed_until >= lease_a.claimed_until + 500);
    // A graceful release ends the claim where evaluation stopped.
    let stopped = renewed.claimed_until - 500;
    a.release_shard(&ha, first, stopped).await.unwrap();
    let second = b.claim_shard(shard, &hb).await.unwrap().expect("released");
    assert_eq!(second.start, stopped.max(first.start));
    assert!(second.token > first.token);
    // A stale claim's release changes nothing.
    a.release_shard(&ha, first, 0).await.unwrap();
    assert!(
        a.claim_shard(shard, &ha).await.unwrap().is_none(),
        "b holds it"
    );
    // An expired lease (its holder died) is taken over from its watermark, and ended for
    // good: its holder can neither renew it nor claim with it.
    let last_b = b
        .renew_holder(&hb, 300, 1_500)
        .await
        .unwrap()
        .expect("b's lease is live");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let third = loop {
        if let Some(claim) = a.claim_shard(shard, &ha).await.unwrap() {
            break claim;
        }
        assert!(tokio::time::Instant::now() < deadline, "the lease expires");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(third.start, last_b.claimed_until);
    assert!(third.token > second.token);
    assert_eq!(b.renew_holder(&hb, 60_000, 1_000).await.unwrap(), None);
    assert!(
        b.claim_shard(shard + 1, &hb).await.unwrap().is_none(),
        "a lost lease claims nothing"
    );
    // Ending a lease frees its shards at once, from its watermark.
    let last_a = a
        .renew_holder(&ha, 60_000, 1_000)
        .await
        .unwrap()
        .expect("a's lease is live");
    a.end_holder(&ha).await.unwrap();
    let hc = name("c");
    b.register_holder(&hc, 60_000, 1_000).await.unwrap();
    let fourth = b
        .claim_shard(shard, &hc)
        .await
        .unwrap()
        .expect("an ended lease's shard is free");
    assert_eq!(fourth.start, last_a.claimed_until);
    assert_eq!(a.renew_holder(&ha, 60_000, 1_000).await.unwrap(), None);
}
