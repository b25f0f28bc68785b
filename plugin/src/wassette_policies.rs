//! Checks the Wassette policies in hosts/wassette/ against the commands: one policy per command
//! family granting that family's hosts and variables, and theta-all.yaml granting all of them.
//! (Test only: the policies are read by Wassette, never by the plugin.)

use crate::commands::Fam;
use std::collections::BTreeSet;
use std::path::Path;

/// The hosts a family's requests go to (beside a deployment's own endpoint, which the user grants).
fn hosts(fam: Fam) -> &'static [&'static str] {
    match fam {
        Fam::OnDemand => &["ondemand.thetaedgecloud.com"],
        Fam::Deployments => &["controller.thetaedgecloud.com", "api.thetaedgecloud.com"],
        Fam::Agents => &["controller.thetaedgecloud.com"],
        Fam::Billing => &["api.thetaedgecloud.com"],
        Fam::Video => &["api.thetavideoapi.com"],
        Fam::Inference | Fam::Auth => &[],
    }
}

fn file(fam: Fam) -> Option<&'static str> {
    match fam {
        Fam::OnDemand => Some("theta-ondemand.yaml"),
        Fam::Deployments => Some("theta-deployments.yaml"),
        Fam::Inference => Some("theta-inference.yaml"),
        Fam::Agents => Some("theta-agents.yaml"),
        Fam::Video => Some("theta-video.yaml"),
        Fam::Billing => Some("theta-billing.yaml"),
        Fam::Auth => None,
    }
}

/// (hosts, keys) of a policy file, read line by line (the files are written in one fixed shape).
fn grants(name: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hosts/wassette")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.contains("version: \"1.0\""), "{name}");
    let values = |prefix: &str| -> BTreeSet<String> {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix(prefix))
            .map(|v| v.trim().trim_matches('"').to_owned())
            .collect()
    };
    (values("- host:"), values("- key:"))
}

#[test]
fn every_family_has_a_policy_with_its_hosts_and_variables_and_all_has_every_one() {
    let (all_hosts, all_keys) = grants("theta-all.yaml");
    for fam in Fam::ALL {
        let Some(name) = file(fam) else { continue };
        let (hosts_granted, keys) = grants(name);
        for host in hosts(fam) {
            assert!(hosts_granted.contains(*host), "{name} lacks host {host}");
        }
        assert!(!hosts_granted.is_empty(), "{name} grants no host");
        for var in fam.vars() {
            assert!(keys.contains(*var), "{name} lacks {var}");
        }
        assert!(keys.contains("THETA_DRY_RUN"), "{name}");
        assert!(
            hosts_granted.is_subset(&all_hosts),
            "theta-all.yaml lacks a host of {name}"
        );
        assert!(
            keys.is_subset(&all_keys),
            "theta-all.yaml lacks a key of {name}"
        );
        for host in &hosts_granted {
            assert!(
                host.ends_with(".thetaedgecloud.com")
                    || host.ends_with(".onthetaedgecloud.com")
                    || host == "api.thetavideoapi.com",
                "{name}: {host}"
            );
        }
    }
}
