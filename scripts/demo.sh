#!/usr/bin/env bash
# Installs what is missing, builds, and runs sessiongate on 127.0.0.1:8080 in front of the
# bundled demo AgentScope backend (127.0.0.1:8090, sample data in etc/demo/). Ctrl-C stops
# both.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if [ ! -d tests/conformance/node_modules/@anthropic-ai/sdk ]; then
	(cd tests/conformance && npm ci --no-audit --no-fund --loglevel=error)
fi

# AgentScope writes naive local timestamps; the demo backend's zone is the one the gateway is
# told (etc/sessiongate.json, "timezone"), as a real deployment's must be.
TZ=Europe/Berlin build/tests/fake_agentscope --port 8090 --data etc/demo/agentscope-data.json --quiet &
fake=$!
trap 'kill $fake 2>/dev/null; kill $gw 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
build/sessiongate --config etc/sessiongate.json &
gw=$!
for _ in $(seq 100); do
	curl -fs http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fs http://127.0.0.1:8080/healthz >/dev/null || { echo "demo: the gateway did not start" >&2; exit 1; }

cat <<'TXT'

sessiongate is running on http://127.0.0.1:8080 in front of a demo AgentScope backend.

With curl:
  curl -s -H 'x-api-key: sk-demo-sessiongate' 'http://127.0.0.1:8080/v1/sessions?limit=3'
  curl -s -H 'x-api-key: sk-demo-sessiongate' 'http://127.0.0.1:8080/v1/sessions?statuses=running'

With the official SDK (installed in tests/conformance), from another terminal:
  cd tests/conformance && node --input-type=module -e "
    import Anthropic from '@anthropic-ai/sdk';
    const client = new Anthropic({ apiKey: 'sk-demo-sessiongate', baseURL: 'http://127.0.0.1:8080' });
    for await (const s of client.beta.sessions.list({ limit: 5 })) console.log(s.id, s.status, s.title);
  "

Run an agent through the gateway and watch it answer live (create a session, open its event
stream, send a message, read the stream until the agent is idle):
  cd tests/conformance && node --input-type=module -e "
    import Anthropic from '@anthropic-ai/sdk';
    const client = new Anthropic({ apiKey: 'sk-demo-sessiongate', baseURL: 'http://127.0.0.1:8080' });
    const agent = (await client.beta.agents.list()).data[0];
    const s = await client.beta.sessions.create({ agent: agent.id, environment_id: 'env_none', title: 'hello' });
    const stream = await client.beta.sessions.events.stream(s.id);
    await client.beta.sessions.events.send(s.id, { events: [{ type: 'user.message', content: [{ type: 'text', text: 'Hi!' }] }] });
    for await (const e of stream) {
      console.log(e.type, JSON.stringify(e.content ?? ''));
      if (e.type === 'session.status_idle') break;
    }
  "

The same stream with curl (SSE; -N so that curl shows each event as it comes):
  curl -N -H 'x-api-key: sk-demo-sessiongate' http://127.0.0.1:8080/v1/sessions/SESSION_ID/events/stream

Ctrl-C stops the gateway and the demo backend.
TXT
wait $gw
