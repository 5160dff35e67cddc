#!/bin/sh
# Fails when a transport-neutral layer includes a transport's headers
# (DESIGN.md section 6): src/audio, src/engines, src/session, src/host and
# src/front/proto never see libwebsockets, nats.c or msgpack, so libhark
# links none of them and a rule about sessions cannot depend on a front end.
# Also: only src/front/ws (and the C client, src/client) include
# libwebsockets, only src/front/nats nats.c.
cd "$(dirname "$0")/.."
bad=0
# Known exception: the deepgram engine is a WebSocket *client* of an upstream
# provider (like src/client), not a front end; it uses libwebsockets' client.
# Its one header that includes it (dg_int.h, shared by deepgram.c and
# dg_conn.c) is listed here by name so a new one is a decision, not an accident.
allowed='src/engines/deepgram/dg_int.h'
is_allowed() { for a in $allowed; do [ "$1" = "$a" ] && return 0; done; return 1; }
neutral='src/audio src/engines src/session src/host src/front/proto'
for f in $(find $neutral -name '*.[ch]' | sort); do
    is_allowed "$f" && continue
    if grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](libwebsockets|lws_|nats/|nats\.h|msgpack)' "$f"; then
        echo "layering: $f includes a transport header (see DESIGN.md section 6)"
        bad=1
    fi
done
for f in $(find src include -name '*.[ch]' | grep -vE '^src/(front/ws|client)/' | sort); do
    is_allowed "$f" && continue
    if grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](libwebsockets|lws_)' "$f"; then
        echo "layering: $f includes libwebsockets outside src/front/ws and src/client"
        bad=1
    fi
done
for f in $(find src include -name '*.[ch]' | grep -v '^src/front/nats/' | sort); do
    if grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](nats/|nats\.h)' "$f"; then
        echo "layering: $f includes nats.c outside src/front/nats"
        bad=1
    fi
done
# Includes point downward only (docs/internals/PIPELINE.md, "Layers"): the
# session host (src/host: worker pool, chans, table, outbox, admission,
# limits, stats) sits above the session core and below every front end, so
# the core never includes the host, the host never includes a front end, and
# nothing below the CLI includes it.
above() { # $1: a directory; $2: the include prefixes it must not use
    for f in $(find $1 -name '*.[ch]' | sort); do
        if grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"($2)/" "$f"; then
            echo "layering: $f includes a layer above it ($2)"
            bad=1
        fi
    done
}
above 'src/base src/audio src/engines src/session' 'host|front|cli'
above 'src/host' 'front|cli'
above 'src/front' 'cli'
exit $bad
