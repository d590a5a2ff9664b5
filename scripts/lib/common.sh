# shellcheck shell=bash
# Shared helpers for the lab scripts (setup_ec2.sh, setup_sysbench.sh, test_audit_logs.sh).
#
# The same scripts run on the Amazon Linux 2023 lab host against Aurora (settings come from
# /etc/audit-lab/settings.env, credentials from Secrets Manager) and on a developer machine against
# the local MariaDB lab (settings and credentials exported as environment variables). Environment
# variables that are already set always win over the settings file.
#
# Source it, then call lab_init "<script name>".

LAB_DEFAULT_SETTINGS_FILE=/etc/audit-lab/settings.env

lab_log() {
  printf '%s [%s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${LAB_SCRIPT_NAME:-lab}" "$*" >&2
}

lab_die() {
  lab_log "ERROR: $*"
  exit 1
}

# Creates a private scratch folder (credential files live there), removed when the script exits.
# Scripts that need their own EXIT work call lab_cleanup_tmp from their trap.
lab_init() {
  LAB_SCRIPT_NAME=$1
  # sysbench is built into /usr/local/bin, which sudo's secure_path and user-data shells may leave out.
  [[ ":$PATH:" == *:/usr/local/bin:* ]] || PATH="/usr/local/bin:$PATH"
  LAB_TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/audit-lab.XXXXXX")
  chmod 700 "$LAB_TMP_DIR"
  trap lab_cleanup_tmp EXIT
}

lab_cleanup_tmp() {
  if [[ -n "${LAB_TMP_DIR:-}" && -d "$LAB_TMP_DIR" ]]; then
    rm -rf -- "$LAB_TMP_DIR"
  fi
}

# Loads LAB_* and AWS_* keys from the settings file without overriding variables already set.
# The file is evaluated in a clean child shell so that only the keys it defines come back.
# Scripts call it before reading their own LAB_* defaults; later calls do nothing.
lab_load_settings() {
  [[ -z "${LAB_SETTINGS_LOADED:-}" ]] || return 0
  LAB_SETTINGS_LOADED=1
  local file=${LAB_SETTINGS_FILE:-$LAB_DEFAULT_SETTINGS_FILE}
  if [[ ! -f "$file" ]]; then
    if [[ -n "${LAB_SETTINGS_FILE:-}" ]]; then
      lab_die "LAB_SETTINGS_FILE=$file does not exist"
    fi
    lab_log "no settings file at $file; using environment variables only"
    return 0
  fi
  if [[ ! -r "$file" ]]; then
    lab_die "settings file $file is not readable (run as root or ec2-user with sudo)"
  fi
  local entry key value dump
  # shellcheck disable=SC2016 # $1 is expanded by the child shell, on purpose
  dump=$(env -i PATH="$PATH" bash -c 'set -a; . "$1" || exit 1; env -0' lab-settings "$file" | tr '\0' '\036') ||
    lab_die "settings file $file could not be read as KEY='value' lines"
  while IFS= read -r -d $'\036' entry; do
    key=${entry%%=*}
    value=${entry#*=}
    [[ "$key" =~ ^(LAB|AWS)_[A-Z0-9_]+$ ]] || continue
    if [[ -z "${!key+set}" ]]; then
      printf -v "$key" '%s' "$value"
      # shellcheck disable=SC2163 # exporting the variable whose name is in $key is the intent
      export "$key"
    fi
  done <<<"$dump"
  lab_log "settings loaded from $file"
}

# Dies naming every required variable that is empty.
lab_require_settings() {
  local name missing=()
  for name in "$@"; do
    [[ -n "${!name:-}" ]] || missing+=("$name")
  done
  if ((${#missing[@]} > 0)); then
    lab_die "missing setting(s): ${missing[*]} (set them in ${LAB_SETTINGS_FILE:-$LAB_DEFAULT_SETTINGS_FILE} or export them)"
  fi
}

lab_require_commands() {
  local cmd missing=()
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
  done
  if ((${#missing[@]} > 0)); then
    lab_die "required command(s) not found: ${missing[*]}"
  fi
}

# Applies the defaults every script shares.
lab_apply_defaults() {
  LAB_DB_PORT=${LAB_DB_PORT:-3306}
  LAB_DB_NAME=${LAB_DB_NAME:-sbtest}
  LAB_READER_HOST=${LAB_READER_HOST:-}
  LAB_BUCKET=${LAB_BUCKET:-}
  [[ "$LAB_DB_PORT" =~ ^[0-9]+$ ]] || lab_die "LAB_DB_PORT must be a number, got '$LAB_DB_PORT'"
  [[ "$LAB_DB_NAME" =~ ^[A-Za-z0-9_]+$ ]] || lab_die "LAB_DB_NAME must match [A-Za-z0-9_]+, got '$LAB_DB_NAME'"
}

# Prints one field of a JSON object read from stdin (jq when present, else node).
lab_json_field() {
  local field=$1
  if command -v jq >/dev/null 2>&1; then
    jq -er --arg f "$field" '.[$f] | strings'
  elif command -v node >/dev/null 2>&1; then
    node -e '
      let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
        const v = JSON.parse(s)[process.argv[1]];
        if (typeof v !== "string") process.exit(1);
        process.stdout.write(v + "\n");
      });' "$field"
  else
    lab_die "neither jq nor node is installed to read JSON"
  fi
}

# Sets LAB_DB_USER / LAB_DB_PASSWORD (not exported): explicit values win, otherwise the
# Secrets Manager secret LAB_SECRET_ARN (fields username/password) is read with the AWS CLI.
lab_resolve_credentials() {
  if [[ -n "${LAB_DB_USER:-}" && -n "${LAB_DB_PASSWORD:-}" ]]; then
    return 0
  fi
  if [[ -z "${LAB_SECRET_ARN:-}" ]]; then
    lab_die "no database credentials: set LAB_DB_USER and LAB_DB_PASSWORD, or LAB_SECRET_ARN"
  fi
  lab_require_commands aws
  local secret region_args=()
  [[ -n "${AWS_REGION:-}" ]] && region_args=(--region "$AWS_REGION")
  secret=$(aws secretsmanager get-secret-value "${region_args[@]}" --secret-id "$LAB_SECRET_ARN" \
    --query SecretString --output text) || lab_die "could not read secret $LAB_SECRET_ARN (instance role? region?)"
  LAB_DB_USER=$(lab_json_field username <<<"$secret") || lab_die "secret $LAB_SECRET_ARN has no string field 'username'"
  LAB_DB_PASSWORD=$(lab_json_field password <<<"$secret") || lab_die "secret $LAB_SECRET_ARN has no string field 'password'"
  export -n LAB_DB_USER LAB_DB_PASSWORD
  lab_log "credentials for '$LAB_DB_USER' read from Secrets Manager"
}

# The MySQL-compatible command-line client: `mariadb` (AL2023 mariadb105, Debian) or `mysql`.
lab_mysql_bin() {
  if command -v mariadb >/dev/null 2>&1; then
    printf 'mariadb\n'
  elif command -v mysql >/dev/null 2>&1; then
    printf 'mysql\n'
  else
    lab_die "no MySQL client found (install mariadb105 on Amazon Linux 2023, mariadb-client on Debian)"
  fi
}

# Writes a client option file (mode 600) for USER/PASSWORD and prints its path, so passwords never
# appear on a command line. Option-file values are double-quoted with backslashes escaped.
lab_client_cnf() {
  local user=$1 password=$2 name=${3:-client}
  if [[ "$password" == *'"'* || "$password" == *$'\n'* || "$user" == *'"'* || "$user" == *$'\n'* ]]; then
    lab_die "user names and passwords containing double quotes or newlines are not supported"
  fi
  local file="$LAB_TMP_DIR/$name.cnf"
  (
    umask 077
    printf '[client]\nuser="%s"\npassword="%s"\n' "${user//\\/\\\\}" "${password//\\/\\\\}" >"$file"
  )
  printf '%s\n' "$file"
}

# lab_mysql CNF HOST [client args...]: runs the client over TCP against HOST:LAB_DB_PORT.
# --comments keeps /* marker */ comments in what the server receives (clients strip them by default),
# which is what lets the audit log carry the run marker.
lab_mysql() {
  local cnf=$1 host=$2
  shift 2
  "${LAB_MYSQL_BIN:?lab_setup_database_access must run first}" --defaults-extra-file="$cnf" --protocol=TCP \
    --host="$host" --port="$LAB_DB_PORT" --comments --batch --skip-column-names "$@"
}

# Admin connection to the writer with the resolved lab credentials.
lab_mysql_admin() {
  lab_mysql "${LAB_ADMIN_CNF:?lab_setup_database_access must run first}" "$LAB_WRITER_HOST" "$@"
}

# Loads settings, applies defaults, resolves credentials and the client: what every
# database-facing script needs before its first query.
lab_setup_database_access() {
  lab_load_settings
  lab_apply_defaults
  lab_require_settings LAB_WRITER_HOST
  lab_resolve_credentials
  LAB_MYSQL_BIN=$(lab_mysql_bin)
  LAB_ADMIN_CNF=$(lab_client_cnf "$LAB_DB_USER" "$LAB_DB_PASSWORD" admin)
}

lab_is_positive_int() {
  [[ "$1" =~ ^[1-9][0-9]*$ ]]
}
