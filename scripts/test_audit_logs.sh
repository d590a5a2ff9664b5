#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# End-to-end check of the audit trail: runs tagged authentication, OLTP, schema and privilege tests
# against the database, then reads the run's audit records back (from the backup bucket, or from a
# local folder of raw audit files) and writes a verification report. Exit status 0 only when every
# expected record was found.
#
# Every statement carries a comment `/* <marker>:<category>:<step> */` with a marker unique to the
# run (auditlab_<utc yyyymmddhhmmss>_<8 hex>); the users and the table the run creates are named after
# it too, so the analyser can tell this run's records from everything else in the log. The statements
# and the expectations are defined once, in scripts/audit-analysis/plan.ts.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$SCRIPT_DIR/lib/common.sh"

usage() {
  cat <<EOF
Usage: $(basename "$0") [options]

Options (environment variable in brackets):
  --source-dir DIR     read raw audit files from DIR (repeatable) instead of the backup bucket LAB_BUCKET
  --timeout SECONDS    how long to wait for the records to arrive [AUDITLAB_VERIFY_TIMEOUT]
                       (default 1200 for the bucket: the pipeline runs every 15 minutes; 60 for a folder)
  --interval SECONDS   pause between polls [AUDITLAB_VERIFY_INTERVAL] (default 60 bucket / 5 folder)
  --report-dir DIR     where the .txt and .json reports go [LAB_REPORT_DIR] (default \$HOME/audit-reports)
  --sysbench-time S    length of the tagged sysbench run [LAB_TEST_SYSBENCH_TIME] (default 20)
  --sysbench-threads N sysbench threads [LAB_TEST_SYSBENCH_THREADS] (default 2)
  --reader             also run a tagged statement on the reader endpoint LAB_READER_HOST
  --no-table-events    the cluster does not log the TABLE event class: do not expect READ/WRITE/CREATE...
  --user-host HOST     host part of the run's temporary accounts [LAB_TEST_USER_HOST] (default %)
  --skip CATEGORY      self-test of the verifier: do not execute CATEGORY (authentication, oltp, schema,
                       privilege, reader) but still expect it, so the report must fail
  --no-verify          only run the tests; print the marker to verify later with the analyser
  -h, --help           show this help

Connection settings come from ${LAB_SETTINGS_FILE:-/etc/audit-lab/settings.env} or the environment:
LAB_WRITER_HOST, LAB_READER_HOST, LAB_DB_PORT, LAB_DB_NAME, LAB_DB_USER + LAB_DB_PASSWORD or
LAB_SECRET_ARN, AWS_REGION, LAB_BUCKET (and AWS_ENDPOINT_URL_S3 for a local S3).
EOF
}

SETUP_DONE=0
CLEANUP_DONE=0

on_exit() {
  local status=$?
  if ((SETUP_DONE == 1 && CLEANUP_DONE == 0)); then
    lab_log "removing the run's users and table after a failure"
    if ! run_block cleanup "$LAB_ADMIN_CNF" "$LAB_WRITER_HOST" "$LAB_DB_NAME"; then
      lab_log "cleanup failed: drop users ${PLAN[auth_user]}, ${PLAN[oltp_user]}, ${PLAN[priv_user]} and table ${PLAN[table]} by hand"
    fi
  fi
  lab_cleanup_tmp
  exit "$status"
}

# The analyser: bundled on the lab host, TypeScript source (via the repository's tsx) elsewhere.
find_analyser() {
  if [[ -f "$SCRIPT_DIR/audit-analysis.js" ]]; then
    lab_require_commands node
    ANALYSER=(node "$SCRIPT_DIR/audit-analysis.js")
  elif [[ -f "$SCRIPT_DIR/audit-analysis/cli.ts" && -x "$SCRIPT_DIR/../node_modules/.bin/tsx" ]]; then
    ANALYSER=("$SCRIPT_DIR/../node_modules/.bin/tsx" "$SCRIPT_DIR/audit-analysis/cli.ts")
  else
    lab_die "analyser not found: expected $SCRIPT_DIR/audit-analysis.js (lab host) or scripts/audit-analysis/cli.ts with node_modules installed (npm ci)"
  fi
}

# run_block NAME CNF HOST [DATABASE]: executes one SQL block written by the analyser's plan.
run_block() {
  local name=$1 cnf=$2 host=$3 database=${4:-}
  local file="$SQL_DIR/$name.sql"
  [[ -f "$file" ]] || lab_die "the plan has no SQL block '$name'"
  local args=()
  [[ -n "$database" ]] && args+=(--database="$database")
  lab_log "block $name on $host"
  lab_mysql "$cnf" "$host" "${args[@]}" <"$file" || lab_die "SQL block '$name' failed on $host"
}

skipped() {
  local category=$1 s
  for s in "${SKIP[@]}"; do
    [[ "$s" == "$category" ]] && return 0
  done
  return 1
}

authentication_tests() {
  local ok_cnf bad_cnf output error_file="$LAB_TMP_DIR/failed-login.err"
  ok_cnf=$(lab_client_cnf "${PLAN[auth_user]}" "${PLAN[auth_password]}" auth-user)
  output=$(run_block auth-login-ok "$ok_cnf" "$LAB_WRITER_HOST") ||
    lab_die "successful-login test failed for ${PLAN[auth_user]} (on MariaDB, anonymous ''@localhost accounts shadow '%' accounts: drop them or set --user-host)"
  [[ "$output" == "${PLAN[auth_user]}@"* ]] || lab_die "login test ran as '$output', expected ${PLAN[auth_user]}"
  lab_log "login as ${PLAN[auth_user]} succeeded"

  bad_cnf=$(lab_client_cnf "${PLAN[auth_user]}" "wrong-${PLAN[auth_password]}" auth-user-bad)
  if lab_mysql "$bad_cnf" "$LAB_WRITER_HOST" -e "SELECT 1" >/dev/null 2>"$error_file"; then
    lab_die "login with a wrong password succeeded for ${PLAN[auth_user]}"
  fi
  # Only a rejected password counts: a network error would leave no FAILED_CONNECT record.
  grep -q "1045" "$error_file" || lab_die "wrong-password login failed for another reason: $(cat "$error_file")"
  lab_log "login with a wrong password was rejected as expected: $(head -n 1 "$error_file")"
}

# Number of sysbench tables (sbtest1..N) in the workload schema.
sysbench_table_count() {
  lab_mysql_admin -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '$LAB_DB_NAME' AND table_name REGEXP '^sbtest[0-9]+\$'"
}

# Uses the sysbench tables as they were prepared (by the lab host's user data or the local lab, with
# whatever --tables/--table-size they chose); prepares the defaults only when there are none.
ensure_sysbench_tables() {
  SYSBENCH_TABLES=$(sysbench_table_count)
  if ((SYSBENCH_TABLES == 0)); then
    "$SCRIPT_DIR/setup_sysbench.sh" prepare
    SYSBENCH_TABLES=$(sysbench_table_count)
  fi
  SYSBENCH_TABLE_SIZE=$(lab_mysql_admin -e "SELECT COALESCE(MAX(id), 0) FROM \`$LAB_DB_NAME\`.sbtest1")
  if ! lab_is_positive_int "$SYSBENCH_TABLES" || ! lab_is_positive_int "$SYSBENCH_TABLE_SIZE"; then
    lab_die "the sysbench tables in '$LAB_DB_NAME' are missing or empty; run setup_sysbench.sh cleanup and prepare"
  fi
  lab_log "sysbench tables: $SYSBENCH_TABLES x $SYSBENCH_TABLE_SIZE rows"
}

oltp_tests() {
  local cnf
  cnf=$(lab_client_cnf "${PLAN[oltp_user]}" "${PLAN[oltp_password]}" oltp-user)
  run_block oltp-begin "$cnf" "$LAB_WRITER_HOST" "$LAB_DB_NAME" >/dev/null
  LAB_DB_USER=${PLAN[oltp_user]} LAB_DB_PASSWORD=${PLAN[oltp_password]} \
    "$SCRIPT_DIR/setup_sysbench.sh" run --target writer --time "$SYSBENCH_TIME" --threads "$SYSBENCH_THREADS" \
    --tables "$SYSBENCH_TABLES" --table-size "$SYSBENCH_TABLE_SIZE" --report-interval 0
  run_block oltp-end "$cnf" "$LAB_WRITER_HOST" "$LAB_DB_NAME" >/dev/null
}

main() {
  lab_init test_audit_logs
  trap on_exit EXIT
  lab_load_settings

  local source_dirs=() timeout='' interval='' report_dir=${LAB_REPORT_DIR:-${HOME:-.}/audit-reports}
  local reader=0 table_events=1 verify=1 user_host=${LAB_TEST_USER_HOST:-%}
  SYSBENCH_TIME=${LAB_TEST_SYSBENCH_TIME:-20}
  SYSBENCH_THREADS=${LAB_TEST_SYSBENCH_THREADS:-2}
  SKIP=()
  while (($# > 0)); do
    case "$1" in
      --source-dir) source_dirs+=("${2:?--source-dir needs a value}"); shift 2 ;;
      --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
      --interval) interval=${2:?--interval needs a value}; shift 2 ;;
      --report-dir) report_dir=${2:?--report-dir needs a value}; shift 2 ;;
      --sysbench-time) SYSBENCH_TIME=${2:?--sysbench-time needs a value}; shift 2 ;;
      --sysbench-threads) SYSBENCH_THREADS=${2:?--sysbench-threads needs a value}; shift 2 ;;
      --reader) reader=1; shift ;;
      --no-table-events) table_events=0; shift ;;
      --user-host) user_host=${2:?--user-host needs a value}; shift 2 ;;
      --skip)
        case "${2:-}" in
          authentication | oltp | schema | privilege | reader) SKIP+=("$2") ;;
          *) lab_die "--skip takes authentication, oltp, schema, privilege or reader" ;;
        esac
        shift 2
        ;;
      --no-verify) verify=0; shift ;;
      -h | --help) usage; return 0 ;;
      *) usage >&2; lab_die "unknown option '$1'" ;;
    esac
  done
  lab_is_positive_int "$SYSBENCH_TIME" || lab_die "--sysbench-time must be a positive integer"
  lab_is_positive_int "$SYSBENCH_THREADS" || lab_die "--sysbench-threads must be a positive integer"

  lab_setup_database_access
  ((reader == 0)) || lab_require_settings LAB_READER_HOST
  if ((verify == 1 && ${#source_dirs[@]} == 0)); then
    [[ -n "${LAB_BUCKET:-}" ]] || lab_die "LAB_BUCKET is empty: deploy the backup pipeline first, or give --source-dir"
  fi
  find_analyser

  local categories=setup,authentication,oltp,schema,privilege,cleanup
  ((reader == 0)) || categories=setup,authentication,oltp,schema,privilege,reader,cleanup

  SQL_DIR="$LAB_TMP_DIR/sql"
  local plan_output key value
  plan_output=$("${ANALYSER[@]}" plan --sql-dir "$SQL_DIR" --database "$LAB_DB_NAME" --user-host "$user_host" \
    --categories "$categories") || lab_die "the analyser could not plan the run"
  declare -gA PLAN=()
  while IFS='=' read -r key value; do
    [[ -n "$key" ]] && PLAN[$key]=$value
  done <<<"$plan_output"
  for key in marker auth_user auth_password oltp_user oltp_password priv_user table; do
    [[ -n "${PLAN[$key]:-}" ]] || lab_die "the analyser's plan did not print '$key'"
  done
  local marker=${PLAN[marker]}
  lab_log "run marker: $marker"

  skipped oltp || ensure_sysbench_tables

  SETUP_DONE=1
  run_block setup "$LAB_ADMIN_CNF" "$LAB_WRITER_HOST" "$LAB_DB_NAME"

  if skipped authentication; then lab_log "SKIPPING authentication (--skip)"; else authentication_tests; fi
  if skipped oltp; then lab_log "SKIPPING oltp (--skip)"; else oltp_tests; fi
  if skipped schema; then
    lab_log "SKIPPING schema (--skip)"
  else
    run_block schema "$LAB_ADMIN_CNF" "$LAB_WRITER_HOST" "$LAB_DB_NAME"
  fi
  if skipped privilege; then
    lab_log "SKIPPING privilege (--skip)"
  else
    run_block privilege "$LAB_ADMIN_CNF" "$LAB_WRITER_HOST" "$LAB_DB_NAME"
  fi
  if ((reader == 1)); then
    if skipped reader; then
      lab_log "SKIPPING reader (--skip)"
    else
      run_block reader "$LAB_ADMIN_CNF" "$LAB_READER_HOST" >/dev/null
    fi
  fi
  run_block cleanup "$LAB_ADMIN_CNF" "$LAB_WRITER_HOST" "$LAB_DB_NAME"
  CLEANUP_DONE=1
  lab_log "all test statements executed for run $marker"

  if ((verify == 0)); then
    printf '%s\n' "$marker"
    return 0
  fi

  local args=(verify --marker "$marker" --categories "$categories" --report-dir "$report_dir")
  local dir
  if ((${#source_dirs[@]} > 0)); then
    for dir in "${source_dirs[@]}"; do args+=(--source-dir "$dir"); done
  else
    args+=(--bucket "$LAB_BUCKET")
  fi
  [[ -n "$timeout" ]] && args+=(--timeout "$timeout")
  [[ -n "$interval" ]] && args+=(--interval "$interval")
  ((table_events == 1)) || args+=(--no-table-events)
  "${ANALYSER[@]}" "${args[@]}"
}

main "$@"
