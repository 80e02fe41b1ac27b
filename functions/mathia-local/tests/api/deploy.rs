//! The deploy files agree with the code: the SAM template names every function binary (and
//! nothing else) and gives each function what `MATHIA_BACKEND=aws` requires, and
//! docker-compose runs `mathia-local emulate` with variables the code reads, from an image
//! that holds mathia-local and every function binary.

use std::collections::BTreeSet;

use serde_yaml_ng::{Mapping, Value};

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

/// Variables the AWS SDK reads itself (not in `mathia::config::ENV_VARS`).
const SDK_VARS: [&str; 3] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"];

fn template() -> Value {
    serde_yaml_ng::from_str(&read("infra/template.yaml")).expect("the template is YAML")
}

fn keys(map: &Mapping) -> BTreeSet<String> {
    map.keys().map(|k| k.as_str().expect("string keys").to_owned()).collect()
}

#[test]
fn the_sam_template_deploys_exactly_the_function_binaries() {
    let text = read("infra/template.yaml");
    let in_template: BTreeSet<String> =
        text.lines().filter_map(|l| l.trim().strip_prefix("Binary:")).map(|b| b.trim().to_owned()).collect();
    let binaries = function_binaries();
    assert_eq!(binaries.len(), 8, "{binaries:?}");
    assert_eq!(in_template, binaries);
    for b in &binaries {
        assert!(repo_root().join("functions").join(b).join("src/main.rs").exists(), "{b}");
    }
    let parsed = template();
    let resources = parsed["Resources"].as_mapping().unwrap();
    let functions = resources.values().filter(|r| r["Type"] == "AWS::Serverless::Function").count();
    assert_eq!(functions, 8);
    let mappings: Vec<_> = resources.values().filter(|r| r["Type"] == "AWS::Lambda::EventSourceMapping").collect();
    assert_eq!(mappings.len(), 3, "one event source mapping per queue");
    for r in mappings {
        let types = &r["Properties"]["FunctionResponseTypes"];
        assert_eq!(types[0], "ReportBatchItemFailures", "{r:?}");
    }
}

#[test]
fn every_function_gets_what_the_aws_backend_requires_and_nothing_the_code_does_not_read() {
    let parsed = template();
    let globals = parsed["Globals"]["Function"]["Environment"]["Variables"].as_mapping().expect("Globals env");
    assert_eq!(globals.get("MATHIA_BACKEND").unwrap(), "aws");
    // wiring::AwsResources refuses to start without these; Globals give them to every function.
    for var in [
        "MATHIA_CONNECTIONS_TABLE",
        "MATHIA_FILES_BUCKET",
        "MATHIA_WS_ENDPOINT",
        "MATHIA_AI_QUEUE_URL",
        "MATHIA_MODERATION_QUEUE_URL",
        "MATHIA_REMINDERS_QUEUE_URL",
        "DATABASE_URL",
        "REDIS_URL",
        "MATHIA_MASTER_KEY",
        "CALENDLY_CLIENT_ID",
        "CALENDLY_CLIENT_SECRET",
        "CALENDLY_REDIRECT_URI",
    ] {
        assert!(globals.contains_key(var), "Globals set {var}");
    }
    let mut set = keys(globals);
    let resources = parsed["Resources"].as_mapping().unwrap();
    for (name, r) in resources.iter().filter(|(_, r)| r["Type"] == "AWS::Serverless::Function") {
        if let Some(own) = r["Properties"]["Environment"]["Variables"].as_mapping() {
            set.extend(keys(own));
        }
        let name = name.as_str().unwrap();
        if name == "HttpApiFunction" {
            let ws_url = &r["Properties"]["Environment"]["Variables"]["MATHIA_WS_URL"];
            assert!(ws_url.as_str().is_some_and(|u| u.starts_with("wss://")), "http-api tells browsers the wss URL");
        }
    }
    for var in &set {
        assert!(mathia::config::ENV_VARS.contains(&var.as_str()), "the template sets {var}, which nothing reads");
    }

    let outputs = parsed["Outputs"].as_mapping().unwrap();
    for output in ["SiteUrl", "SiteBucket", "WebSocketUrl", "HttpApiUrl"] {
        assert!(outputs.contains_key(output), "output {output}");
    }
}

#[test]
fn docker_compose_runs_the_emulator_with_variables_the_code_reads() {
    let compose: Value = serde_yaml_ng::from_str(&read("docker-compose.yml")).expect("compose is YAML");
    let services = compose["services"].as_mapping().unwrap();
    for name in ["postgres", "redis", "localstack", "mathia"] {
        assert!(services.contains_key(name), "service {name}");
    }
    let mathia = &compose["services"]["mathia"];
    assert_eq!(mathia["build"]["dockerfile"], "Dockerfile");
    assert_eq!(mathia["command"][0], "emulate", "compose runs `mathia-local emulate`");
    let ports: Vec<&str> = mathia["ports"].as_sequence().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(ports, ["8000:8000", "8001:8001", "8002:8002"], "the site, the WebSocket API, the AWS pass-through");

    let env = mathia["environment"].as_mapping().unwrap();
    for key in env.keys() {
        let key = key.as_str().unwrap();
        assert!(
            mathia::config::ENV_VARS.contains(&key) || SDK_VARS.contains(&key),
            "compose sets {key}, which nothing reads"
        );
    }
    assert_eq!(env.get("MATHIA_BIND").unwrap(), "0.0.0.0:8000");
    assert_eq!(env.get("MATHIA_EMULATOR_WS_BIND").unwrap(), "0.0.0.0:8001");
    assert_eq!(env.get("MATHIA_EMULATOR_AWS_BIND").unwrap(), "0.0.0.0:8002");
    assert_eq!(env.get("MATHIA_WS_URL").unwrap(), "ws://localhost:8001/prod", "what the browser outside opens");
    assert_eq!(env.get("MATHIA_BACKEND").unwrap(), "aws");
    for key in SDK_VARS {
        assert!(env.get(key).and_then(Value::as_str).is_some_and(|v| !v.is_empty()), "dummy AWS setting {key}");
    }
    assert!(env.get("DATABASE_URL").unwrap().as_str().unwrap().contains("@postgres:5432/"));
    assert_eq!(env.get("REDIS_URL").unwrap(), "redis://redis:6379");

    // The AWS endpoint is LocalStack, by its service name or one of its network aliases.
    let localstack = &compose["services"]["localstack"];
    let mut localstack_hosts = vec!["localstack".to_owned()];
    if let Some(aliases) = localstack["networks"]["default"]["aliases"].as_sequence() {
        localstack_hosts.extend(aliases.iter().map(|a| a.as_str().unwrap().to_owned()));
    }
    let endpoint = env.get("AWS_ENDPOINT_URL").unwrap().as_str().unwrap();
    assert!(
        localstack_hosts.iter().any(|h| endpoint == format!("http://{h}:4566")),
        "{endpoint} is not LocalStack ({localstack_hosts:?})"
    );
    let localstack_services = localstack["environment"]["SERVICES"].as_str().unwrap();
    for service in ["s3", "sqs", "dynamodb"] {
        assert!(localstack_services.split(',').any(|s| s.trim() == service), "LocalStack runs {service}");
    }

    // Nothing must be exported first: no `${VAR:?...}`, and no master key at all — it is
    // generated into .mathia/ under the working directory, which is a named volume.
    let text = read("docker-compose.yml");
    assert!(!text.contains(":?"), "compose requires a variable from the shell");
    assert!(!env.contains_key("MATHIA_MASTER_KEY"));
    let dockerfile = read("Dockerfile");
    let workdir = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("WORKDIR "))
        .next_back()
        .expect("the runtime stage's WORKDIR")
        .trim()
        .to_owned();
    let state_dir = format!("{workdir}/.mathia");
    let volumes = compose["volumes"].as_mapping().unwrap();
    let mounted = mathia["volumes"].as_sequence().unwrap().iter().filter_map(Value::as_str).any(|v| {
        let (volume, target) = v.split_once(':').unwrap();
        target.trim_end_matches(":rw") == state_dir && volumes.contains_key(volume)
    });
    assert!(mounted, "a named volume holds {state_dir} (the generated master key)");

    // What LocalStack's init script creates is what the service is told to use.
    let init = read("localstack/init/ready.d/10-mathia.sh");
    let table = env.get("MATHIA_CONNECTIONS_TABLE").unwrap().as_str().unwrap();
    assert!(init.contains(&format!("TABLE={table}\n")), "the init script creates {table}");
    let bucket = env.get("MATHIA_FILES_BUCKET").unwrap().as_str().unwrap();
    assert!(init.contains(&format!("BUCKET={bucket}\n")), "the init script creates {bucket}");
    let prefix = env.get("MATHIA_QUEUE_PREFIX").unwrap().as_str().unwrap();
    for queue in ["ai", "moderation", "reminders"] {
        assert!(init.contains(&format!("ensure_queue {prefix}{queue} ")), "the init script creates {prefix}{queue}");
    }
}

#[test]
fn the_image_builds_mathia_local_and_every_function_into_one_directory() {
    let dockerfile = read("Dockerfile");
    let mut binaries = function_binaries();
    binaries.insert("mathia-local".to_owned());
    for b in &binaries {
        assert!(dockerfile.contains(&format!("-p {b} ")) || dockerfile.contains(&format!("-p {b}\n")), "builds {b}");
        assert!(dockerfile.contains(&format!("target/release/{b} ")), "copies {b} beside mathia-local");
    }
    assert!(dockerfile.contains("COPY --from=builder /out/bin/ /app/bin/"), "one directory of binaries");
    assert!(dockerfile.contains("ENTRYPOINT [\"/app/bin/mathia-local\"]"));
    assert!(dockerfile.contains("COPY static/ ./static/"));
    assert!(dockerfile.contains("EXPOSE 8000 8001 8002"));
}
