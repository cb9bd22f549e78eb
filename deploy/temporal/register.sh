#!/bin/sh
# One-shot job (temporalio/admin-tools): the namespace the engagements run in, and the search
# attributes admins find them by in the Temporal UI (List Workflows filters). Idempotent.
set -eu
NS="${NAMESPACE:-default}"
T="temporal --address ${TEMPORAL_ADDRESS}"
$T operator cluster health
$T operator namespace describe -n "$NS" >/dev/null 2>&1 || $T operator namespace create -n "$NS" --retention "${RETENTION:-30d}"
existing="$($T operator search-attribute list -n "$NS")"
register() {  # name type
  if printf '%s\n' "$existing" | grep -qw "$1"; then
    echo "search attribute $1 already registered"
  else
    $T operator search-attribute create -n "$NS" --name "$1" --type "$2"
  fi
}
register EngagementPhase Keyword
register EngagementClient Keyword
register EngagementType Keyword
register ContractId Keyword
register EndDate Datetime
register NextDeadline Datetime
register NextDeadlineLabel Keyword
register NeedsAttention Bool
echo "namespace $NS and search attributes ready"
