use super::*;

fn refused(image: &str) -> bool {
    RegistryPolicy::default().refusal(image).is_some()
}

#[test]
fn the_registry_is_the_first_component_only_when_docker_says_so() {
    assert_eq!(registry_of("busybox"), None);
    assert_eq!(registry_of("busybox:1.36"), None);
    assert_eq!(registry_of("library/busybox"), None);
    assert_eq!(registry_of("dgrid/busybox:latest"), None);
    assert_eq!(registry_of("docker.io/library/busybox"), Some("docker.io"));
    assert_eq!(registry_of("localhost/x"), Some("localhost"));
    assert_eq!(registry_of("127.0.0.1:5000/x:tag"), Some("127.0.0.1:5000"));
    assert_eq!(registry_of("[::1]:5000/x"), Some("[::1]:5000"));
    // A tag or a digest never makes a registry, and a digest's ':' is not a port.
    assert_eq!(registry_of("x:5000"), None);
    let digest = format!("busybox@sha256:{}", "a".repeat(64));
    assert_eq!(registry_of(&digest), None);
    let digest = format!("10.0.0.1:5000/x@sha256:{}", "a".repeat(64));
    assert_eq!(registry_of(&digest), Some("10.0.0.1:5000"));
}

#[test]
fn registries_parse_with_ports_brackets_and_case() {
    let r = Registry::parse("Reg.Example.:5000").unwrap();
    assert_eq!((r.host.as_str(), r.port), ("reg.example", Some(5000)));
    let r = Registry::parse("[::1]:5000").unwrap();
    assert_eq!((r.host.as_str(), r.port), ("::1", Some(5000)));
    assert_eq!(r.to_string(), "[::1]:5000");
    assert_eq!(Registry::parse("[fe80::1]").unwrap().port, None);
    for bad in [
        "", ":5000", "h:port", "h:70000", "[::1", "[::1]x", "a/b", "a b",
    ] {
        assert!(Registry::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn public_registries_and_docker_hub_are_pulled_from() {
    for image in [
        "busybox",
        "python:3.11-alpine",
        "dgrid/busybox:latest",
        "docker.io/library/busybox:1.36",
        "ghcr.io/owner/image:tag",
        "registry.example.com:5000/team/x",
        "8.8.8.8:5000/x",
        "[2001:db8::1]:5000/x",
        "100.128.0.1/x",
    ] {
        assert!(!refused(image), "{image}");
    }
}

#[test]
fn loopback_private_link_local_and_unspecified_registries_are_refused() {
    for image in [
        "127.0.0.1:5000/x",
        "127.9.9.9/x:1",
        "localhost/x",
        "localhost:5000/x",
        "LOCALHOST:5000/x",
        "localhost.:5000/x",
        "registry.localhost/x",
        "ip6-localhost:5000/x",
        "0.0.0.0:5000/x",
        "10.1.2.3/x",
        "172.16.0.1:443/x",
        "172.31.255.255/x",
        "192.168.1.10:5000/x",
        "169.254.169.254/latest",
        "100.64.0.1/x",
        "224.0.0.1/x",
        "[::1]:5000/x",
        "[::]:5000/x",
        "[fc00::1]/x",
        "[fd12:3456::1]:5000/x",
        "[fe80::1]/x",
        "[fe80::1%25eth0]/x",
        "[::ffff:127.0.0.1]:5000/x",
        "[::ffff:10.0.0.1]/x",
        "[64:ff9b::a00:1]/x",
        "[2002:7f00:1::]/x",
        "registry.local/x",
        "nas.home.arpa/x",
        "build.internal:5000/x",
        "myregistry:5000/x",
    ] {
        assert!(refused(image), "{image}");
    }
    let digest = format!("127.0.0.1:5000/x@sha256:{}", "a".repeat(64));
    assert!(refused(&digest));
}

#[test]
fn addresses_in_the_resolvers_other_notations_are_recognised() {
    for (text, ip) in [
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("10.258", "10.0.1.2"),
        ("192.168.65535", "192.168.255.255"),
    ] {
        assert_eq!(inet_aton(text), Some(ip.parse().unwrap()), "{text}");
    }
    for text in [
        "1.2.3.4.5",
        "256.0.0.1",
        "1.2.65536",
        "08.0.0.1",
        "a.b",
        "1..2",
    ] {
        assert_eq!(inet_aton(text), None, "{text}");
    }
    for image in [
        "127.1:5000/x",
        "2130706433:5000/x",
        "0x7f000001:5000/x",
        "0177.0.0.1/x",
    ] {
        assert!(refused(image), "{image}");
    }
}

#[test]
fn an_operator_allows_a_registry_by_name_and_port() {
    let policy = RegistryPolicy::parse(&["127.0.0.1:5000, registry.local".into()]).unwrap();
    assert_eq!(policy.refusal("127.0.0.1:5000/x"), None);
    assert!(policy.refusal("127.0.0.1:5001/x").is_some());
    assert_eq!(policy.refusal("registry.local/x"), None);
    assert_eq!(policy.refusal("registry.local:8443/x"), None);
    assert!(policy.refusal("10.0.0.1/x").is_some());
    let v6 = RegistryPolicy::parse(&["[::1]:5000".into()]).unwrap();
    assert_eq!(v6.refusal("[::1]:5000/x"), None);
    assert!(RegistryPolicy::parse(&["a/b".into()]).is_err());
}

#[test]
fn the_refusal_names_the_image_the_kind_of_address_and_the_way_out() {
    let why = RegistryPolicy::default()
        .refusal("127.0.0.1:5000/x")
        .unwrap();
    assert!(why.contains("\"127.0.0.1:5000/x\""), "{why}");
    assert!(why.contains("a loopback address"), "{why}");
    assert!(why.contains("--allow-registry 127.0.0.1:5000"), "{why}");
}
