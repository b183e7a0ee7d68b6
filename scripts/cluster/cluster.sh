#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1 for tests and the demo:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK (fake
# nodes whose pods become Ready), started from the binaries build.sh caches.
#
#   cluster.sh up     build if needed, start (or reuse a running one), print KUBECONFIG=…
#   cluster.sh down   stop every component and remove the state directory
#   cluster.sh env    print KUBECONFIG=… of the running cluster (exit 1 if none)
#   cluster.sh status print which components are alive
#   cluster.sh restart-apiserver  stop kube-apiserver and start it again (same flags, same port)
#
# BERTH_CLUSTER_DIR picks the state directory, so several clusters can coexist.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${BERTH_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth-testenv}
D=${BERTH_CLUSTER_DIR:-$CACHE/run/default}
KC=$D/admin.kubeconfig
COMPONENTS="etcd kube-apiserver kube-controller-manager kube-scheduler kwok"
NODES=${BERTH_CLUSTER_NODES:-2}

log() { echo "[cluster] $*" >&2; }
alive() { local f=$D/$1.pid; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }
all_alive() { for c in $COMPONENTS; do alive "$c" || return 1; done; }
api_ready() { [ -f "$D/ports" ] && curl -fsk --max-time 2 "https://127.0.0.1:$(api_port)/readyz" >/dev/null 2>&1; }
api_port() { sed -n 's/^API=//p' "$D/ports"; }

stop_all() {
  local c pid
  for c in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    if [ -f "$D/$c.pid" ]; then
      pid=$(cat "$D/$c.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$D/$c.pid"
    fi
  done
}

# free_ports N: N distinct free TCP ports on 127.0.0.1, chosen by the kernel.
free_ports() {
  node -e '
    const net = require("node:net"); const n = +process.argv[1]; const servers = [];
    (async () => { for (let i = 0; i < n; i++) { const s = net.createServer(); await new Promise(r => s.listen(0, "127.0.0.1", r)); servers.push(s); }
      console.log(servers.map(s => s.address().port).join(" ")); servers.forEach(s => s.close()); })();' "$1"
}

pki() {
  local P=$D/pki; mkdir -p "$P"; cd "$P"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj /CN=berth-testenv-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' >srv.ext
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile srv.ext -out apiserver.crt 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=berth-testenv-admin" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' >cli.ext
  openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile cli.ext -out admin.crt 2>/dev/null
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
  openssl pkey -in sa.key -pubout -out sa.pub
  cd - >/dev/null
}

kubeconfig() {
  local P=$D/pki
  cat >"$KC" <<KCEOF
apiVersion: v1
kind: Config
clusters:
- name: berth-testenv
  cluster:
    server: https://127.0.0.1:$1
    certificate-authority-data: $(base64 -w0 "$P/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(base64 -w0 "$P/admin.crt")
    client-key-data: $(base64 -w0 "$P/admin.key")
contexts:
- name: berth-testenv
  context: { cluster: berth-testenv, user: admin }
current-context: berth-testenv
KCEOF
}

# start NAME ARGS…: run a component detached from this shell, logging to $D/NAME.log.
start() {
  local name=$1; shift
  # 8>&-: the daemons must not inherit (and so hold) the start lock.
  setsid nohup "$BIN/$name" "$@" >"$D/$name.log" 2>&1 </dev/null 8>&- &
  echo $! >"$D/$name.pid"
}

# wait_for DESC SECONDS COMPONENT CMD…: poll CMD until it succeeds; fail early if COMPONENT died.
wait_for() {
  local desc=$1 secs=$2 comp=$3; shift 3
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    if ! alive "$comp"; then log "$comp exited while waiting for $desc; last log lines:"; tail -n 20 "$D/$comp.log" >&2; return 1; fi
    if [ "$(date +%s)" -ge "$deadline" ]; then log "timed out after ${secs}s waiting for $desc"; tail -n 20 "$D/$comp.log" >&2; return 1; fi
    sleep 0.3
  done
}

# start_apiserver: kube-apiserver on the ports in $D/ports (boot, and restart-apiserver reuse it).
start_apiserver() {
  local EC API P=$D/pki
  EC=$(sed -n 's/^EC=//p' "$D/ports"); API=$(api_port)
  # --endpoint-reconciler-type=none: a loopback advertise address fails endpoint validation.
  start kube-apiserver --etcd-servers="http://127.0.0.1:$EC" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
    --secure-port="$API" --endpoint-reconciler-type=none \
    --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local --service-account-key-file="$P/sa.pub" \
    --service-account-signing-key-file="$P/sa.key" --service-cluster-ip-range=10.96.0.0/16 \
    --authorization-mode=Node,RBAC --allow-privileged=true --disable-admission-plugins=ServiceAccount \
    --audit-policy-file="$D/audit-policy.yaml" --audit-log-path="$D/audit.log" --audit-log-format=json \
    --audit-log-maxsize=200 --audit-log-maxbackup=1 \
    ${BERTH_APISERVER_EXTRA_ARGS:-}
  wait_for "kube-apiserver /readyz" 90 kube-apiserver curl -fsk "https://127.0.0.1:$API/readyz"
}

boot() {
  local EC EP API KCM SCH
  read -r EC EP API KCM SCH <<<"$(free_ports 5)"
  printf 'EC=%s\nEP=%s\nAPI=%s\nKCM=%s\nSCH=%s\n' "$EC" "$EP" "$API" "$KCM" "$SCH" >"$D/ports"
  [ -f "$D/pki/sa.pub" ] || pki
  kubeconfig "$API"
  local P=$D/pki
  start etcd --name=node0 --data-dir="$D/etcd" \
    --listen-client-urls="http://127.0.0.1:$EC" --advertise-client-urls="http://127.0.0.1:$EC" \
    --listen-peer-urls="http://127.0.0.1:$EP" --initial-advertise-peer-urls="http://127.0.0.1:$EP" \
    --initial-cluster="node0=http://127.0.0.1:$EP" --unsafe-no-fsync=true --auto-compaction-retention=1 \
    --listen-metrics-urls="" --log-level=warn
  wait_for "etcd health" 30 etcd curl -fs "http://127.0.0.1:$EC/health"
  # An audit log of every request (metadata only) lets tests count what a client really sent, by verb.
  printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n' >"$D/audit-policy.yaml"
  # The controllers' client QPS is raised (defaults: 20 for the controller-manager, 50 for the scheduler)
  # so a 1,000-object test app converges in seconds, as on a bigger cluster, not in minutes.
  # Node health comes from node Leases that KWOK renews (--node-lease-duration-seconds below): its heartbeat
  # stage writes the full node status only every ~10 minutes, so without Leases the node lifecycle controller
  # marks every fake node NotReady after its grace period, whatever that period is.
  start_apiserver
  start kube-controller-manager --kubeconfig="$KC" --authentication-kubeconfig="$KC" --authorization-kubeconfig="$KC" \
    --leader-elect=false --controllers='*' --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
    --use-service-account-credentials=false --bind-address=127.0.0.1 --secure-port="$KCM" \
    --authorization-always-allow-paths=/healthz,/readyz,/livez --kube-api-qps=200 --kube-api-burst=400 \
    ${BERTH_KCM_EXTRA_ARGS:-}
  cat >"$D/sched.yaml" <<SEOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection: { kubeconfig: "$KC", qps: 200, burst: 400 }
leaderElection: { leaderElect: false }
SEOF
  start kube-scheduler --config="$D/sched.yaml" --bind-address=127.0.0.1 --secure-port="$SCH" \
    --authentication-kubeconfig="$KC" --authorization-kubeconfig="$KC" --authorization-always-allow-paths=/healthz,/readyz,/livez
  start kwok --kubeconfig="$KC" --config="$BIN/kwok-stages.yaml" --manage-all-nodes=true --cidr=10.244.0.0/16 \
    --node-lease-duration-seconds="${BERTH_NODE_LEASE_SECONDS:-40}"
  wait_for "kube-controller-manager /healthz" 60 kube-controller-manager curl -fsk "https://127.0.0.1:$KCM/healthz"
  wait_for "kube-scheduler /healthz" 60 kube-scheduler curl -fsk "https://127.0.0.1:$SCH/healthz"
  # The default ServiceAccount appearing proves the controller-manager's controllers run.
  wait_for "serviceaccount default/default" 60 kube-controller-manager "$BIN/kubectl" --kubeconfig="$KC" get serviceaccount default -n default
  local i
  for i in $(seq 0 $((NODES - 1))); do
    "$BIN/kubectl" --kubeconfig="$KC" apply -f - >/dev/null <<NEOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: { node.alpha.kubernetes.io/ttl: "0", kwok.x-k8s.io/node: fake }
  labels: { type: kwok, kubernetes.io/hostname: kwok-node-$i, kubernetes.io/os: linux }
status:
  allocatable: { cpu: "64", memory: 512Gi, pods: "1000" }
  capacity: { cpu: "64", memory: 512Gi, pods: "1000" }
NEOF
  done
  wait_for "fake nodes Ready" 60 kwok "$BIN/kubectl" --kubeconfig="$KC" wait --for=condition=Ready node --all --timeout=1s
}

cmd=${1:-}
case "$cmd" in
  up)
    BIN=$("$HERE/build.sh")
    mkdir -p "$D"
    exec 8>"$D/.lock"; flock 8
    if all_alive && api_ready; then
      log "reusing the running control plane in $D"
    else
      stop_all
      rm -rf "$D/etcd"
      t0=$(date +%s)
      ok=0
      for attempt in 1 2 3; do   # a port taken between choosing and binding: retry with new ports
        if boot; then ok=1; break; fi
        log "start attempt $attempt failed; retrying with new ports"; stop_all; rm -rf "$D/etcd"
      done
      [ "$ok" = 1 ] || { log "could not start the control plane; logs are in $D"; exit 1; }
      echo "$BIN" >"$D/bin"
      log "control plane up in $(( $(date +%s) - t0 ))s (API https://127.0.0.1:$(api_port), logs in $D)"
    fi
    echo "KUBECONFIG=$KC"
    ;;
  down)
    if [ -d "$D" ]; then stop_all; rm -rf "$D"; log "stopped and removed $D"; else log "no control plane in $D"; fi
    ;;
  env)
    if all_alive && api_ready; then echo "KUBECONFIG=$KC"; echo "BERTH_CLUSTER_BIN=$(cat "$D/bin")"; else log "no running control plane in $D (run: $0 up)"; exit 1; fi
    ;;
  restart-apiserver)
    exec 8>"$D/.lock"; flock 8
    all_alive || { log "no running control plane in $D (run: $0 up)"; exit 1; }
    BIN=$(cat "$D/bin")
    pid=$(cat "$D/kube-apiserver.pid")
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    t0=$(date +%s%N)
    start_apiserver
    log "kube-apiserver restarted on port $(api_port) (ready after $(( ($(date +%s%N) - t0) / 1000000 )) ms)"
    ;;
  status)
    for c in $COMPONENTS; do if alive "$c"; then echo "$c running (pid $(cat "$D/$c.pid"))"; else echo "$c stopped"; fi; done
    ;;
  *)
    echo "usage: $0 up|down|env|status|restart-apiserver" >&2; exit 2 ;;
esac
