#!/bin/bash
# Creates Mathia's files bucket, queues and connection table on LocalStack
# (docker compose). LocalStack runs this once it is ready
# (/etc/localstack/init/ready.d). It is idempotent: running it again changes
# nothing that already exists. `mathia-local emulate` creates the same
# resources when they are missing; this script has them ready as soon as
# LocalStack is (for awslocal too). Keep it in step with infra/template.yaml,
# docker-compose.yml and functions/mathia-local/src/emulate/resources.rs.
set -euo pipefail

export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
AWS="${AWSLOCAL:-awslocal}"

TABLE=mathia-connections
BUCKET=mathia-files
# The site's origin in docker-compose.yml: the browser PUTs uploads to presigned URLs.
SITE_ORIGINS='"http://localhost:8000","http://127.0.0.1:8000"'
MAX_RECEIVE_COUNT=5

log() { printf '[mathia-init] %s\n' "$*"; }

# queue_url NAME -> prints the queue URL, or nothing if the queue is missing.
queue_url() {
  "$AWS" sqs get-queue-url --queue-name "$1" --query QueueUrl --output text 2>/dev/null || true
}

# ensure_queue NAME VISIBILITY_TIMEOUT_S: creates NAME and NAME-dlq if missing,
# then (re)applies the attributes, so an existing queue converges too.
ensure_queue() {
  local name=$1 visibility=$2
  local dlq="${name}-dlq" dlq_url dlq_arn url redrive

  dlq_url=$(queue_url "$dlq")
  if [ -z "$dlq_url" ]; then
    dlq_url=$("$AWS" sqs create-queue --queue-name "$dlq" --query QueueUrl --output text)
    log "created queue $dlq"
  fi
  "$AWS" sqs set-queue-attributes --queue-url "$dlq_url" \
    --attributes MessageRetentionPeriod=1209600
  dlq_arn=$("$AWS" sqs get-queue-attributes --queue-url "$dlq_url" \
    --attribute-names QueueArn --query Attributes.QueueArn --output text)

  url=$(queue_url "$name")
  if [ -z "$url" ]; then
    url=$("$AWS" sqs create-queue --queue-name "$name" --query QueueUrl --output text)
    log "created queue $name"
  fi
  # RedrivePolicy is a JSON document inside the JSON attribute map.
  redrive=$(printf '{\\"deadLetterTargetArn\\":\\"%s\\",\\"maxReceiveCount\\":\\"%s\\"}' \
    "$dlq_arn" "$MAX_RECEIVE_COUNT")
  "$AWS" sqs set-queue-attributes --queue-url "$url" --attributes \
    "{\"VisibilityTimeout\":\"${visibility}\",\"MessageRetentionPeriod\":\"345600\",\"RedrivePolicy\":\"${redrive}\"}"
  log "queue $name ready: $url (DLQ $dlq, maxReceiveCount $MAX_RECEIVE_COUNT)"
}

ensure_table() {
  if "$AWS" dynamodb describe-table --table-name "$TABLE" >/dev/null 2>&1; then
    log "table $TABLE exists"
  else
    "$AWS" dynamodb create-table \
      --table-name "$TABLE" \
      --billing-mode PAY_PER_REQUEST \
      --attribute-definitions \
        AttributeName=pk,AttributeType=S \
        AttributeName=sk,AttributeType=S \
        AttributeName=gsi1pk,AttributeType=S \
        AttributeName=gsi1sk,AttributeType=S \
      --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE \
      --global-secondary-indexes \
        'IndexName=gsi1,KeySchema=[{AttributeName=gsi1pk,KeyType=HASH},{AttributeName=gsi1sk,KeyType=RANGE}],Projection={ProjectionType=ALL}' \
      >/dev/null
    "$AWS" dynamodb wait table-exists --table-name "$TABLE"
    log "created table $TABLE"
  fi

  local ttl
  ttl=$("$AWS" dynamodb describe-time-to-live --table-name "$TABLE" \
    --query TimeToLiveDescription.TimeToLiveStatus --output text)
  case "$ttl" in
    ENABLED | ENABLING) ;;
    *)
      "$AWS" dynamodb update-time-to-live --table-name "$TABLE" \
        --time-to-live-specification Enabled=true,AttributeName=expires_at >/dev/null
      log "TTL enabled on $TABLE.expires_at"
      ;;
  esac
}

ensure_bucket() {
  if "$AWS" s3api head-bucket --bucket "$BUCKET" >/dev/null 2>&1; then
    log "bucket $BUCKET exists"
  else
    "$AWS" s3api create-bucket --bucket "$BUCKET" >/dev/null
    log "created bucket $BUCKET"
  fi
  "$AWS" s3api put-bucket-cors --bucket "$BUCKET" --cors-configuration \
    "{\"CORSRules\":[{\"AllowedMethods\":[\"PUT\",\"GET\"],\"AllowedOrigins\":[${SITE_ORIGINS}],\"AllowedHeaders\":[\"*\"],\"ExposeHeaders\":[\"ETag\"],\"MaxAgeSeconds\":300}]}"
  log "bucket $BUCKET ready (CORS for ${SITE_ORIGINS})"
}

# Visibility timeouts mirror infra/template.yaml (6 x the worker's timeout).
ensure_queue mathia-ai 720
ensure_queue mathia-moderation 400
ensure_queue mathia-reminders 180
ensure_table
ensure_bucket
log "done"
