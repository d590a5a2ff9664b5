#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Prepares, runs or removes the sysbench OLTP workload that makes the database write audit records.
#
#   setup_sysbench.sh prepare|run|cleanup [options]
#
# Endpoints and credentials come from the lab settings file or the environment (lib/common.sh).
# Queries are sent as plain text (--db-ps-mode=disable) so that the audit log holds the literal
# statements, not prepared-statement placeholders.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$SCRIPT_DIR/lib/common.sh"

usage() {
  cat <<EOF
Usage: $(basename "$0") <prepare|run|cleanup> [options]

Commands:
  prepare   create the schema if missing and load the sysbench tables (skipped when they exist)
  run       run oltp_read_write against the writer (and/or oltp_read_only against the reader)
  cleanup   drop the sysbench tables

Options (environment variable in brackets, then default):
  --tables N            number of tables            [LAB_SYSBENCH_TABLES]       4
  --table-size N        rows per table              [LAB_SYSBENCH_TABLE_SIZE]   10000
  --threads N           client threads              [LAB_SYSBENCH_THREADS]      2
  --time SECONDS        run duration               [LAB_SYSBENCH_TIME]         60
  --report-interval N   progress every N seconds    [LAB_SYSBENCH_REPORT_INTERVAL] 10
  --target T            run against writer|reader|both [LAB_SYSBENCH_TARGET]    writer
  -h, --help            show this help

Connection settings: LAB_WRITER_HOST, LAB_READER_HOST, LAB_DB_PORT, LAB_DB_NAME, and LAB_DB_USER +
LAB_DB_PASSWORD or LAB_SECRET_ARN (settings file ${LAB_SETTINGS_FILE:-/etc/audit-lab/settings.env}).
EOF
}

main() {
  lab_init setup_sysbench
  if (($# == 0)); then
    usage >&2
    exit 2
  fi
  local command=$1
  shift
  case "$command" in
    prepare | run | cleanup) ;;
    -h | --help)
      usage
      return 0
      ;;
    *)
      usage >&2
      lab_die "unknown command '$command'"
      ;;
  esac

  lab_load_settings
  local tables=${LAB_SYSBENCH_TABLES:-4} table_size=${LAB_SYSBENCH_TABLE_SIZE:-10000}
  local threads=${LAB_SYSBENCH_THREADS:-2} duration=${LAB_SYSBENCH_TIME:-60}
  local report_interval=${LAB_SYSBENCH_REPORT_INTERVAL:-10} target=${LAB_SYSBENCH_TARGET:-writer}
  while (($# > 0)); do
    case "$1" in
      --tables) tables=${2:?--tables needs a value}; shift 2 ;;
      --table-size) table_size=${2:?--table-size needs a value}; shift 2 ;;
      --threads) threads=${2:?--threads needs a value}; shift 2 ;;
      --time) duration=${2:?--time needs a value}; shift 2 ;;
      --report-interval) report_interval=${2:?--report-interval needs a value}; shift 2 ;;
      --target) target=${2:?--target needs a value}; shift 2 ;;
      -h | --help) usage; return 0 ;;
      *) usage >&2; lab_die "unknown option '$1'" ;;
    esac
  done
  local name value
  for name in tables table_size threads duration; do
    value=${!name}
    lab_is_positive_int "$value" || lab_die "--${name//_/-} must be a positive integer, got '$value'"
  done
  [[ "$report_interval" =~ ^[0-9]+$ ]] || lab_die "--report-interval must be a number, got '$report_interval'"
  case "$target" in
    writer | reader | both) ;;
    *) lab_die "--target must be writer, reader or both, got '$target'" ;;
  esac

  lab_require_commands sysbench
  lab_setup_database_access
  if [[ "$command" == run && "$target" != writer ]]; then
    lab_require_settings LAB_READER_HOST
  fi

  local credentials_file
  credentials_file=$(sysbench_credentials_file)
  SYSBENCH_COMMON=(
    --db-driver=mysql
    --mysql-port="$LAB_DB_PORT"
    --mysql-db="$LAB_DB_NAME"
    --config-file="$credentials_file"
    --tables="$tables"
    --table-size="$table_size"
    --db-ps-mode=disable
  )

  case "$command" in
    prepare) prepare "$tables" "$threads" ;;
    run) run "$target" "$threads" "$duration" "$report_interval" ;;
    cleanup) cleanup ;;
  esac
}

# sysbench reads the credentials from a private options file instead of its command line (ps).
sysbench_credentials_file() {
  if [[ "$LAB_DB_USER$LAB_DB_PASSWORD" =~ [[:space:]#] ]]; then
    lab_die "sysbench option files cannot carry whitespace or '#' in user names or passwords"
  fi
  local file="$LAB_TMP_DIR/sysbench.cfg"
  (
    umask 077
    printf 'mysql-user=%s\nmysql-password=%s\n' "$LAB_DB_USER" "$LAB_DB_PASSWORD" >"$file"
  )
  printf '%s\n' "$file"
}

# Number of sysbench tables (sbtest1..sbtestN) that already exist in the workload schema.
existing_table_count() {
  local tables=$1 names=() i
  for ((i = 1; i <= tables; i++)); do
    names+=("'sbtest$i'")
  done
  local list
  list=$(IFS=,; printf '%s' "${names[*]}")
  lab_mysql_admin -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '$LAB_DB_NAME' AND table_name IN ($list)"
}

prepare() {
  local tables=$1 threads=$2
  lab_log "ensuring schema '$LAB_DB_NAME' exists on $LAB_WRITER_HOST:$LAB_DB_PORT"
  lab_mysql_admin -e "CREATE DATABASE IF NOT EXISTS \`$LAB_DB_NAME\`"
  local existing
  existing=$(existing_table_count "$tables")
  if ((existing == tables)); then
    lab_log "all $tables sysbench tables already exist in '$LAB_DB_NAME'; nothing to prepare"
    return 0
  fi
  if ((existing > 0)); then
    lab_die "$existing of $tables sysbench tables exist in '$LAB_DB_NAME'; run '$(basename "$0") cleanup' first"
  fi
  lab_log "loading $tables tables into '$LAB_DB_NAME' with $threads threads"
  sysbench oltp_read_write "${SYSBENCH_COMMON[@]}" --mysql-host="$LAB_WRITER_HOST" --threads="$threads" prepare
  lab_log "prepare done"
}

run() {
  local target=$1 threads=$2 duration=$3 report_interval=$4
  local options=(--threads="$threads" --time="$duration" --report-interval="$report_interval")
  if [[ "$target" == writer || "$target" == both ]]; then
    lab_log "oltp_read_write on writer $LAB_WRITER_HOST for ${duration}s with $threads threads"
    sysbench oltp_read_write "${SYSBENCH_COMMON[@]}" --mysql-host="$LAB_WRITER_HOST" "${options[@]}" run
  fi
  if [[ "$target" == reader || "$target" == both ]]; then
    lab_log "oltp_read_only on reader $LAB_READER_HOST for ${duration}s with $threads threads"
    sysbench oltp_read_only "${SYSBENCH_COMMON[@]}" --mysql-host="$LAB_READER_HOST" "${options[@]}" run
  fi
  lab_log "run done"
}

cleanup() {
  lab_log "dropping the sysbench tables in '$LAB_DB_NAME'"
  sysbench oltp_read_write "${SYSBENCH_COMMON[@]}" --mysql-host="$LAB_WRITER_HOST" cleanup
}

main "$@"
