use super::*;
use crate::layout::State;
use crate::task::{parse_task, Limits, Origin};

fn task_ref(id: &str, blob: u8) -> TaskRef {
    let mut bytes = [0u8; 20];
    bytes[0] = blob;
    TaskRef {
        id: id.into(),
        state: State::Queue,
        path: format!("tasks/queue/00/{id}.json"),
        blob: gix::ObjectId::from_bytes_or_panic(&bytes),
        commit: gix::ObjectId::null(gix::hash::Kind::Sha1),
    }
}

fn spec(extra: &str) -> TaskSpec {
    let json = format!(
        r#"{{"id": "t", "image": "python:3.12-alpine", "command": "true", "created_at": "2026-01-01T00:00:00Z", "timeout": 60, "submitted_by": "test"{extra}}}"#
    );
    parse_task(
        "t.json",
        json.as_bytes(),
        &Limits::default(),
        Origin::Required,
    )
    .unwrap()
}

fn with_image(image: &str) -> TaskSpec {
    TaskSpec {
        image: image.into(),
        ..spec("")
    }
}

fn patterns(list: &[&str]) -> Option<ImagePatterns> {
    ImagePatterns::parse(&list.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
}

#[test]
fn image_patterns_match_the_full_reference() {
    let p = patterns(&["python:3.*", "ghcr.io/acme/*@sha256:*", "dgrid/busybox:*"]).unwrap();
    let digest = format!("ghcr.io/acme/tool@sha256:{}", "a".repeat(64));
    for ok in [
        "python:3.12-alpine",
        "python:3.11",
        digest.as_str(),
        "dgrid/busybox:latest",
    ] {
        assert!(p.allows(ok), "{ok}");
    }
    for no in [
        "python:2.7",
        "python",
        "docker.io/library/python:3.12",
        "ghcr.io/acme/tool:latest",
        "ghcr.io/acme/a/b@sha256:00",
        "ghcr.io/evil/tool@sha256:00",
        "other/image:1",
        "dgrid/busybox",
    ] {
        assert!(!p.allows(no), "{no}");
    }
    assert!(patterns(&[]).is_none(), "no pattern: any image");
    assert!(patterns(&[" ", ""]).is_none());
    let err = ImagePatterns::parse(&["python:[3".to_string()])
        .err()
        .unwrap();
    assert!(err.contains("python:[3"), "{err}");
}

#[test]
fn each_reason_is_found_and_said_once_per_file_version() {
    let gate = Admission {
        images: patterns(&["python:3.*"]),
        max_timeout: Some(600),
        max_cpus: Some(2.0),
        max_memory: Some(1 << 30),
        ..Admission::default()
    };
    let t = task_ref("t", 1);
    assert_eq!(gate.refusal(&t, &spec(""), false), None);
    let cases: Vec<(TaskSpec, Skip, &str)> = vec![
        (
            with_image("alpine:3"),
            Skip::Image,
            "matches no --allow-image",
        ),
        (spec(r#", "timeout": 3600"#), Skip::Caps, "timeout 3600s"),
        (spec(r#", "resources": {"cpus": 4}"#), Skip::Caps, "4 CPUs"),
        (
            spec(r#", "resources": {"memory": "2g"}"#),
            Skip::Caps,
            "2g of memory",
        ),
        (
            spec(r#", "network": "bridge""#),
            Skip::Caps,
            "--allow-network",
        ),
    ];
    for (spec, skip, words) in &cases {
        let (got, why) = gate.refusal(&t, spec, false).expect("refused");
        assert_eq!(got, *skip, "{why}");
        assert!(why.contains(words), "{why:?} lacks {words:?}");
    }
    assert_eq!(
        gate.refusal(&t, &spec(r#", "network": "bridge""#), true),
        None,
        "a node that allows the network runs it"
    );
    assert_eq!(
        gate.refusal(
            &t,
            &spec(r#", "resources": {"cpus": 2, "memory": "1g"}"#),
            false
        ),
        None,
        "at the caps is within them"
    );
    // Once per (file version, reason): a later poll says nothing; a new version is said again.
    let line = gate.note(&t, Skip::Image, "why").unwrap();
    assert!(
        line.contains("tasks/queue/00/t.json") && line.contains("(image)"),
        "{line}"
    );
    assert_eq!(gate.note(&t, Skip::Image, "why"), None);
    assert!(
        gate.note(&t, Skip::Caps, "other").is_some(),
        "another reason"
    );
    assert!(
        gate.note(&task_ref("t", 2), Skip::Image, "why").is_some(),
        "edited file"
    );
    assert!(gate
        .note(&task_ref("u", 3), Skip::Untrusted, "why")
        .is_some());
    let counts = gate.counts();
    assert_eq!(counts.get("image"), Some(&2));
    assert_eq!(counts.get("caps"), Some(&1));
    assert_eq!(counts.get("untrusted"), Some(&1));
    let lines = gate.take_lines();
    assert_eq!(
        lines.len(),
        4,
        "each line once, for the worker's log: {lines:?}"
    );
    assert_eq!(lines[0], line);
    assert!(gate.take_lines().is_empty());
}

#[test]
fn the_signature_check_decides_last() {
    let check: Arc<SignatureCheck> = Arc::new(|task: &TaskRef, _: &TaskSpec| {
        if task.id == "good" {
            Ok(())
        } else {
            Err("not signed".to_string())
        }
    });
    let gate = Admission {
        images: patterns(&["python:*"]),
        signatures: Some(check),
        ..Admission::default()
    };
    assert_eq!(gate.refusal(&task_ref("good", 1), &spec(""), false), None);
    let (skip, why) = gate.refusal(&task_ref("bad", 1), &spec(""), false).unwrap();
    assert_eq!((skip, why.as_str()), (Skip::Untrusted, "not signed"));
    // An image refused is named as such, even unsigned.
    let (skip, _) = gate
        .refusal(&task_ref("bad", 1), &with_image("alpine"), false)
        .unwrap();
    assert_eq!(skip, Skip::Image);
}

/// An age identity's keys and a recipients line for it.
fn age_keys(name: &str) -> (Arc<Keys>, Vec<crate::secrets::Recipient>) {
    let id = age::x25519::Identity::generate();
    let secret = age::secrecy::ExposeSecret::expose_secret(&id.to_string()).to_string();
    let keys = Keys::from_bytes(secret.as_bytes()).unwrap();
    let recipients = crate::secrets::parse_recipients(&format!("{name} {}", id.to_public()));
    (Arc::new(keys), recipients.unwrap())
}

#[test]
fn a_task_with_secrets_waits_for_a_node_whose_keys_open_them() {
    let (mine, to_me) = age_keys("me");
    let (other, _) = age_keys("other");
    let armored = crate::secrets::encrypt(b"value-123", &[&to_me[0]]).unwrap();
    let with_secret = spec(&format!(
        r#", "secrets": {{"TOKEN": {}}}"#,
        serde_json::Value::String(armored)
    ));
    let task = task_ref("t", 1);
    let gate = |keys: Option<Arc<Keys>>| Admission {
        keys,
        ..Admission::default()
    };
    let refused = gate(None).refusal(&task, &with_secret, false).unwrap();
    assert_eq!(refused.0, Skip::Secrets);
    assert!(refused.1.contains("no --identity"), "{}", refused.1);
    let refused = gate(Some(other))
        .refusal(&task, &with_secret, false)
        .unwrap();
    assert_eq!(refused.0, Skip::Secrets);
    assert!(refused.1.contains("secret TOKEN"), "{}", refused.1);
    assert_eq!(
        gate(Some(mine.clone())).refusal(&task, &with_secret, false),
        None
    );
    // Tasks without secrets never need a key.
    assert_eq!(gate(None).refusal(&task, &spec(""), false), None);
}
