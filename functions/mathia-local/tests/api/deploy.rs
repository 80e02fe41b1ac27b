//! The deploy files agree with the code: the SAM template names every function binary (and
//! nothing else), and docker-compose wires `mathia-local` with variables the code reads.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

use crate::emulator::repo_root;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `members = [...]` list of the workspace manifest.
fn workspace_members() -> Vec<String> {
    let manifest = read("Cargo.toml");
    let start = manifest.find("members = [").expect("a members list") + "members = [".len();
    let end = start + manifest[start..].find(']').unwrap();
    manifest[start..end].split(',').map(|m| m.trim().trim_matches('"').to_owned()).filter(|m| !m.is_empty()).collect()
}

/// The Lambda binaries of the workspace: every package under functions/ but the local gateway.
fn function_binaries() -> BTreeSet<String> {
    workspace_members()
        .into_iter()
        .filter_map(|m| m.strip_prefix("functions/").map(str::to_owned))
        .filter(|m| m != "mathia-local")
        .collect()
}

#[test]
fn the_sam_template_deploys_exactly_the_function_binaries() {
    let template = read("infra/template.yaml");
    let in_template: BTreeSet<String> =
        template.lines().filter_map(|l| l.trim().strip_prefix("Binary:")).map(|b| b.trim().to_owned()).collect();
    let binaries = function_binaries();
    assert_eq!(binaries.len(), 8, "{binaries:?}");
    assert_eq!(in_template, binaries);
    for b in &binaries {
        assert!(repo_root().join("functions").join(b).join("src/main.rs").exists(), "{b}");
    }
    let parsed: Value = serde_yaml_ng::from_str(&template).expect("the template is YAML");
    let resources = parsed["Resources"].as_mapping().unwrap();
    let functions = resources.values().filter(|r| r["Type"] == "AWS::Serverless::Function").count();
    assert_eq!(functions, 8);
    for r in resources.values().filter(|r| r["Type"] == "AWS::Lambda::EventSourceMapping") {
        let types = &r["Properties"]["FunctionResponseTypes"];
        assert_eq!(types[0], "ReportBatchItemFailures", "{r:?}");
    }
}

#[test]
fn docker_compose_wires_mathia_with_variables_the_code_reads() {
    let compose: Value = serde_yaml_ng::from_str(&read("docker-compose.yml")).expect("compose is YAML");
    let services = compose["services"].as_mapping().unwrap();
    for name in ["postgres", "redis", "localstack", "mathia"] {
        assert!(services.contains_key(name), "service {name}");
    }
    let mathia = &compose["services"]["mathia"];
    assert_eq!(mathia["ports"][0], "8000:8000");
    assert_eq!(mathia["build"]["dockerfile"], "Dockerfile");
    let env = mathia["environment"].as_mapping().unwrap();
    let sdk_vars = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"];
    for key in env.keys() {
        let key = key.as_str().unwrap();
        assert!(
            mathia::config::ENV_VARS.contains(&key) || sdk_vars.contains(&key),
            "compose sets {key}, which nothing reads"
        );
    }
    assert_eq!(env.get("MATHIA_BIND").unwrap(), "0.0.0.0:8000");
    assert_eq!(env.get("MATHIA_BACKEND").unwrap(), "aws");
    assert_eq!(env.get("AWS_ENDPOINT_URL").unwrap(), "http://localstack:4566");
    let ws = env.get("MATHIA_WS_ENDPOINT").unwrap().as_str().unwrap();
    assert_eq!(ws, "http://mathia:8000", "other instances reach this one's management API by its service name");

    // What LocalStack's init script creates is what the service is told to use.
    let init = read("localstack/init/ready.d/10-mathia.sh");
    let table = env.get("MATHIA_CONNECTIONS_TABLE").unwrap().as_str().unwrap();
    assert!(init.contains(&format!("TABLE={table}")), "the init script creates {table}");
    for var in ["MATHIA_AI_QUEUE_URL", "MATHIA_MODERATION_QUEUE_URL", "MATHIA_REMINDERS_QUEUE_URL"] {
        let url = env.get(var).unwrap().as_str().unwrap();
        let queue = url.rsplit('/').next().unwrap();
        assert!(init.contains(&format!("ensure_queue {queue} ")), "the init script creates {queue}");
    }
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains("-p mathia-local"), "the image builds mathia-local");
    assert!(dockerfile.contains("EXPOSE 8000"));
}
