#!/usr/bin/env python3
"""Caos em processos reais: clientes concorrentes contra um nemesis com semente.

Cinco nós (ou `--nodes`) rodam como processos `raft_distribuido.py` com
`--fault-injection`. Vários clientes gravam, leem e apagam chaves ao mesmo
tempo, cada operação com prazo. O histórico guarda o início, o fim e o
resultado de cada operação: "ok", "failed" (a conexão nem abriu, então o pedido
não chegou a nenhum nó) ou "unknown" (o pedido saiu e não houve resposta
definitiva). Enquanto isso, um nemesis derruba nós com `kill -9` (um nó
qualquer, o líder, uma minoria ou todos), reinicia nós com SIGTERM e particiona
a rede com `POST /admin/partition`. Com `--netns` (só como root, com `ip
netns`), cada nó roda no seu namespace de rede e o nemesis também desliga
cabos e corta rotas de verdade.

No fim, o nemesis para, a rede volta inteira, todo nó volta a rodar, e o
script confere:

  - todos os nós chegam ao mesmo log e à mesma máquina de estados (o log de
    cada um é lido do disco e reaplicado);
  - cada escrita confirmada está no log final no índice que a resposta deu;
  - o histórico é linearizável (conferência de raft_example.py), depois de
    resolver pelo log final as escritas de resultado desconhecido;
  - toda escrita confirmada está presente ou foi sobrescrita por uma escrita
    que pode ter acontecido depois dela;
  - nenhum nó morreu sem o nemesis mandar, e nenhum log tem "Traceback",
    "erro fatal" ou "erro interno".

O cronograma do nemesis (quando, que falta, em quais nós) sai só da semente:
`--print-schedule` o mostra sem rodar nada. A escolha de "o líder" depende de
quem é líder na hora, e os tempos reais variam de uma execução para outra.

Uso:

    python3 tests/chaos.py --seconds 300 --seed 7 --nodes 5
    python3 tests/chaos.py --seed 7 --seconds 300 --print-schedule
    sudo python3 tests/chaos.py --seconds 120 --seed 7 --netns
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import json
import math
import os
import random
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Optional, TextIO

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from robustness_util import (Counter, LocalCluster, client_request,  # noqa: E402
                             bullet, exit_on_sigterm, indent, register_cleanup,
                             unregister_cleanup)
from cluster_util import NodeProcess  # noqa: E402
from raft_distribuido import KeyValueStore, StorageError  # noqa: E402
from raft_example import (LinearizabilityResult, Operation,  # noqa: E402
                          check_linearizability)

# Intervalo entre o início da carga e a primeira falta.
WARMUP_SECONDS = 1.0
# Duração de cada falta e pausa entre duas, em segundos (sorteadas).
FAULT_DURATION = (0.8, 4.0)
FAULT_GAP = (0.5, 2.5)

# Prazo de espera dos nós antes do 503 (--request-timeout, em ms) e prazo de
# cada operação no cliente. O do cliente é maior, para que quase sempre o nó
# responda antes e a operação termine com resposta.
NODE_REQUEST_TIMEOUT_MS = 1500
CLIENT_TIMEOUT = 3.0

# Prazo para o cluster convergir depois do fim das faltas.
CONVERGENCE_TIMEOUT = 45.0

# Chave gravada no fim para comprometer tudo o que ficou de termos antigos.
MARKER_KEY = "caos-marcador"

# Tipos de falta: nome, descrição em português, peso no sorteio e se a falta
# precisa do modo --netns.
FAULT_KINDS = (
    ("kill_random", "kill -9 de um nó", 4, False),
    ("kill_leader", "kill -9 do líder", 4, False),
    ("kill_minority", "kill -9 de uma minoria", 2, False),
    ("kill_all", "kill -9 de todos os nós", 1, False),
    ("terminate", "reinício com SIGTERM", 1, False),
    ("partition", "partição maioria/minoria", 3, False),
    ("isolate_leader", "líder isolado", 3, False),
    ("bridge", "partição em ponte", 2, False),
    ("cut_links", "enlaces cortados ao acaso", 2, False),
    ("kill_and_partition", "kill -9 e partição do resto", 1, False),
    ("link_down", "cabo desligado (netns)", 3, True),
    ("leader_link_down", "cabo do líder desligado (netns)", 3, True),
    ("route_cut", "rotas cortadas entre pares (netns)", 2, True),
)
FAULT_LABELS = {kind: label for kind, label, _, _ in FAULT_KINDS}


# ---- cronograma ------------------------------------------------------------

@dataclass(frozen=True)
class FaultStep:
    """Uma falta do cronograma; posições de nós contam a partir de 0."""

    start: float
    kind: str
    duration: float
    # Nós atingidos; nas faltas "do líder", o nó usado se não houver líder.
    victims: tuple = ()
    # Grupos de uma partição: cada nó só fala com os do seu grupo.
    groups: tuple = ()
    # Pares de nós cujo enlace é cortado.
    links: tuple = ()

    def describe(self) -> str:
        text = FAULT_LABELS[self.kind]
        if self.victims:
            prefix = "se não houver líder, " if "leader" in self.kind else ""
            noun = "nó" if len(self.victims) == 1 else "nós"
            text += f" ({prefix}{noun} {', '.join(map(str, self.victims))})"
        if self.groups:
            text += " grupos " + " | ".join(" ".join(map(str, group))
                                             for group in self.groups)
        if self.links:
            text += " enlaces " + " ".join(f"{a}-{b}" for a, b in self.links)
        return f"{self.start:7.2f} s  +{self.duration:.2f} s  {text}"


def plan_schedule(seed: int, seconds: float, nodes: int, netns: bool) -> list:
    """Sorteia o cronograma do nemesis; o mesmo resultado para os mesmos argumentos."""
    rng = random.Random(seed)
    kinds = [(kind, weight) for kind, _, weight, netns_only in FAULT_KINDS
             if netns or not netns_only]
    names = [kind for kind, _ in kinds]
    weights = [weight for _, weight in kinds]
    minority = (nodes - 1) // 2
    steps = []
    start = WARMUP_SECONDS
    while start < seconds:
        kind = rng.choices(names, weights)[0]
        duration = round(rng.uniform(*FAULT_DURATION), 2)
        order = list(range(nodes))
        rng.shuffle(order)
        victims: tuple = ()
        groups: tuple = ()
        links: tuple = ()
        if kind in ("kill_random", "kill_leader", "terminate", "isolate_leader",
                    "link_down", "leader_link_down"):
            victims = (order[0],)
        elif kind == "kill_minority":
            victims = tuple(sorted(order[:minority]))
        elif kind == "kill_all":
            victims = tuple(range(nodes))
        elif kind == "partition":
            size = rng.randint(1, minority)
            groups = (tuple(sorted(order[:size])), tuple(sorted(order[size:])))
        elif kind in ("bridge", "kill_and_partition"):
            # O primeiro nó é a ponte, que fala com os dois lados, ou o nó
            # morto. Os outros se dividem em dois lados que não se falam.
            half = (nodes - 1) // 2
            victims = (order[0],)
            groups = (tuple(sorted(order[1:1 + half])), tuple(sorted(order[1 + half:])))
        elif kind in ("cut_links", "route_cut"):
            pairs = [(a, b) for a in range(nodes) for b in range(a + 1, nodes)]
            chosen = [pair for pair in pairs if rng.random() < 0.35]
            links = tuple(chosen or [rng.choice(pairs)])
        steps.append(FaultStep(round(start, 2), kind, duration, victims, groups, links))
        start += duration + rng.uniform(*FAULT_GAP)
    return steps


# ---- configuração e relatório ----------------------------------------------

@dataclass
class ChaosConfig:
    seed: int
    seconds: float
    nodes: int = 5
    clients: int = 4
    keys: int = 6
    netns: bool = False
    keep_folder: bool = False
    # Arquivo onde gravar o histórico (JSON, uma operação por linha), ou "".
    history_path: str = ""

    def replay_command(self) -> str:
        command = (f"python3 tests/chaos.py --seed {self.seed} --seconds {self.seconds:g} "
                   f"--nodes {self.nodes} --clients {self.clients} --keys {self.keys}")
        if self.netns:
            command = "sudo " + command + " --netns"
        return command


@dataclass
class ChaosReport:
    config: ChaosConfig
    problems: list = field(default_factory=list)
    operations: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    linearizability: str = ""
    convergence: str = ""
    resolution: str = ""
    elapsed: float = 0.0
    folder: str = ""
    skipped: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems and not self.skipped

    def format(self) -> str:
        config = self.config
        network = "namespaces de rede (netns)" if config.netns else "loopback"
        lines = [f"semente: {config.seed}",
                 f"caos: {config.seconds:g} s, {config.nodes} nós, {config.clients} "
                 f"clientes, {config.keys} chaves, rede: {network}",
                 f"tempo total: {self.elapsed:.1f} s",
                 f"operações de clientes: {self.operations.total()}",
                 self.operations.format(),
                 f"faltas injetadas: {self.faults.total()}",
                 self.faults.format(),
                 f"escritas de resultado desconhecido, pelo log final: "
                 f"{self.resolution or 'não conferidas'}",
                 f"linearizabilidade: {self.linearizability or 'não conferida'}",
                 f"convergência: {self.convergence or 'não conferida'}"]
        if self.skipped:
            lines.append(f"não rodou: {self.skipped}")
        if self.problems:
            lines.append(f"FALHOU: {len(self.problems)} problema(s)")
            lines.extend(bullet(problem) for problem in self.problems)
            lines.append(f"pasta com os logs dos nós: {self.folder}")
            lines.append(f"para repetir o cronograma do nemesis: {config.replay_command()}")
        elif not self.skipped:
            lines.append("resultado: nenhum problema encontrado")
        return "\n".join(line for line in lines if line != "")


# ---- rede em namespaces ----------------------------------------------------

class NamespaceFaults:
    """Rede de namespaces do modo --netns, com cabos e rotas que o nemesis corta."""

    def __init__(self, nodes: int):
        import test_netns
        self.test_netns = test_netns
        self.network = test_netns.NamespaceNetwork(f"raftcaos{os.getpid()}", nodes)
        self.routes: set = set()

    @staticmethod
    def unavailable_reason() -> Optional[str]:
        import test_netns
        return test_netns.netns_unavailable_reason()

    def create(self) -> None:
        register_cleanup(self.delete)
        self.network.create()

    def delete(self) -> None:
        unregister_cleanup(self.delete)
        self.network.delete()

    def address(self, position: int) -> str:
        return self.network.node_address(position)

    def enter_bridge(self) -> None:
        """Põe a thread atual no namespace da bridge, de onde os nós são alcançáveis."""
        path = self.test_netns._namespace_path(self.network.bridge_namespace)
        self.test_netns._enter_namespace(path)

    def node_factory(self, node_id: str, host: str, port: int, peers: list, data_dir: str,
                     log_path: str, *, extra_args: tuple, position: int) -> NodeProcess:
        prefix = ("ip", "netns", "exec", self.network.node_namespaces[position])
        return NodeProcess(node_id, host, port, peers, data_dir, log_path,
                           extra_args=extra_args, command_prefix=prefix)

    def set_link(self, position: int, up: bool) -> None:
        self.network.set_node_link(position, up)

    def cut_route(self, first: int, second: int) -> None:
        """Descarta, nos dois namespaces, os pacotes de um nó para o outro."""
        for source, target in ((first, second), (second, first)):
            self.test_netns.run_ip("-n", self.network.node_namespaces[source], "route",
                                   "add", "blackhole", f"{self.address(target)}/32")
            self.routes.add((source, target))

    def heal(self) -> None:
        for source, target in sorted(self.routes):
            self.test_netns.run_ip("-n", self.network.node_namespaces[source], "route",
                                   "del", "blackhole", f"{self.address(target)}/32")
        self.routes.clear()
        for position in range(len(self.network.node_namespaces)):
            self.set_link(position, True)


# ---- a execução ------------------------------------------------------------

class ChaosRun:
    def __init__(self, config: ChaosConfig, output: TextIO = sys.stdout):
        if config.nodes < 3:
            raise ValueError("o caos precisa de pelo menos 3 nós")
        self.config = config
        self.output = output
        self.report = ChaosReport(config)
        self.schedule = plan_schedule(config.seed, config.seconds, config.nodes,
                                      config.netns)
        self.keys = [f"k{number}" for number in range(config.keys)]
        self.netns: Optional[NamespaceFaults] = None
        self.cluster: Optional[LocalCluster] = None
        self.history: list = []
        self.history_lock = threading.Lock()
        self.stop_clients = threading.Event()
        self.unexpected_answers: list = []
        self.started = 0.0
        # /status do líder quando o cluster convergiu no fim; None se não convergiu.
        self.final_status: Optional[dict] = None

    def say(self, text: str) -> None:
        print(text, file=self.output, flush=True)

    def clock(self) -> float:
        return time.monotonic() - self.started

    # ---- montagem ----------------------------------------------------------

    def run(self) -> ChaosReport:
        started = time.monotonic()
        try:
            if self.config.netns:
                reason = NamespaceFaults.unavailable_reason()
                if reason is not None:
                    self.report.skipped = reason
                    return self.report
                self.netns = NamespaceFaults(self.config.nodes)
                try:
                    try:
                        self.netns.create()
                    except self.netns.test_netns.NetworkSetupError as error:
                        self.report.skipped = (f"não foi possível montar a rede de "
                                               f"namespaces: {error}")
                        return self.report
                    self._run_in_bridge_namespace()
                finally:
                    # Os nós morrem antes, para que nenhum processo segure um
                    # namespace apagado.
                    if self.cluster is not None:
                        for node in self.cluster.nodes:
                            node.cleanup()
                    self.netns.delete()
            else:
                self._run_inside()
        finally:
            self.report.elapsed = time.monotonic() - started
            if self.cluster is not None:
                self.report.folder = self.cluster.folder
                self.report.problems[:0] = self.cluster.problems
                keep = self.config.keep_folder or bool(self.report.problems)
                self.cluster.cleanup(keep_folder=keep)
        return self.report

    def _run_in_bridge_namespace(self) -> None:
        """Roda tudo numa thread dentro do namespace da bridge (setns vale por thread)."""
        failure: list = []

        def body() -> None:
            try:
                self.netns.enter_bridge()
                self._run_inside()
            except BaseException as error:  # Levado para a thread principal abaixo.
                failure.append(error)

        # Daemon: se o script for interrompido, a thread não segura o processo,
        # e os `finally` da thread principal matam os nós e apagam a rede.
        thread = threading.Thread(target=body, name="caos-netns", daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(timeout=0.5)
        if failure:
            raise failure[0]

    def _make_cluster(self) -> LocalCluster:
        extra = ("--fault-injection", "--request-timeout", str(NODE_REQUEST_TIMEOUT_MS))
        if self.netns is None:
            return LocalCluster(self.config.nodes, extra_args=extra)
        addresses = [(self.netns.address(position), 18000 + position)
                     for position in range(self.config.nodes)]
        return LocalCluster(self.config.nodes, extra_args=extra, addresses=addresses,
                            node_factory=self.netns.node_factory)

    def _run_inside(self) -> None:
        self.cluster = cluster = self._make_cluster()
        self.say(f"caos: semente {self.config.seed}, {len(self.schedule)} faltas no "
                 f"cronograma, pasta {cluster.folder}")
        cluster.start_all()
        if not cluster.wait_all_answering():
            return
        if not self._wait(lambda: cluster.agreed_leader() is not None, 15.0):
            self.report.problems.append("nenhum líder eleito em 15 s na partida:\n"
                                        + cluster.describe())
            return
        self.started = time.monotonic()
        clients = [threading.Thread(target=self._client_loop, args=(number,),
                                    name=f"cliente-{number}", daemon=True)
                   for number in range(self.config.clients)]
        for thread in clients:
            thread.start()
        try:
            self._run_nemesis()
        finally:
            self.stop_clients.set()
            for thread in clients:
                thread.join(timeout=CLIENT_TIMEOUT + 10)
        self._recover_everything()
        self._final_checks()

    @staticmethod
    def _wait(condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.1)
        return False

    # ---- clientes ----------------------------------------------------------

    def _client_loop(self, number: int) -> None:
        if self.netns is not None:
            self.netns.enter_bridge()
        rng = random.Random(f"{self.config.seed}-cliente-{number}")
        client_id = f"c{number}"
        use_session = client_uses_session(client_id)
        nodes = self.cluster.nodes
        operation_count = 0
        while not self.stop_clients.is_set():
            operation_count += 1
            kind = rng.choices(("put", "get", "delete"), (45, 40, 15))[0]
            key = rng.choice(self.keys)
            node = nodes[rng.randrange(len(nodes))]
            value = f"{client_id}-{operation_count}" if kind == "put" else None
            operation = Operation(client_id, operation_count, kind, key, value,
                                  invoke=self.clock())
            path = "/kv/" + urllib.parse.quote(key, safe="")
            session = {"client_id": client_id, "sequence": operation_count}
            if kind == "put":
                fields = session if use_session else {}
                body = json.dumps({"value": value, **fields}).encode("utf-8")
                result = client_request(node.host, node.port, "PUT", path, body,
                                        CLIENT_TIMEOUT)
            elif kind == "get":
                result = client_request(node.host, node.port, "GET", path, None,
                                        CLIENT_TIMEOUT)
            else:
                body = json.dumps(session).encode("utf-8")
                result = client_request(node.host, node.port, "DELETE", path, body,
                                        CLIENT_TIMEOUT)
            operation.response = self.clock()
            self._classify(operation, result, node)
            with self.history_lock:
                self.history.append(operation)
            if result.outcome == "fail":
                # O nó está parado ou inalcançável; sem a pausa, o cliente só
                # encheria o histórico de tentativas recusadas.
                time.sleep(0.05)

    def _classify(self, operation: Operation, result, node: NodeProcess) -> None:
        if result.outcome == "fail":
            operation.status = "failed"
            return
        if result.outcome == "unknown":
            operation.status = "failed" if operation.kind == "get" else "unknown"
            if result.status >= 500 and result.status != 503:
                self.unexpected_answers.append(
                    f"{operation.kind} {operation.key} no nó {node.node_id}: HTTP "
                    f"{result.status} {str(result.payload)[:200]}")
            return
        expected = {"put": (200,), "get": (200, 404), "delete": (200, 404)}[operation.kind]
        payload = result.payload if isinstance(result.payload, dict) else {}
        if result.status not in expected or \
                (result.status == 404 and "chave não encontrada" not in
                 str(payload.get("error", ""))):
            operation.status = "failed"
            self.unexpected_answers.append(
                f"{operation.kind} {operation.key} no nó {node.node_id}: HTTP "
                f"{result.status} {str(result.payload)[:200]}")
            return
        operation.status = "ok"
        if operation.kind == "get":
            if result.status == 200:
                operation.output = (True, payload.get("value"))
            else:
                operation.output = (False, None)
        elif operation.kind == "delete":
            operation.output = result.status == 200
        if operation.kind != "get":
            operation.index = payload.get("index", 0)
            operation.term = payload.get("term", 0)

    # ---- nemesis -----------------------------------------------------------

    def _event(self, text: str) -> None:
        self.say(f"[{self.clock():7.2f} s] {text}")

    def _sleep_watching(self, seconds: float) -> None:
        """Dorme `seconds`, conferindo os processos a cada meio segundo."""
        deadline = time.monotonic() + seconds
        while True:
            for problem in self.cluster.check_processes():
                self._event(f"PROBLEMA: {problem.splitlines()[0]}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(0.5, remaining))

    def _run_nemesis(self) -> None:
        end = self.config.seconds
        for step in self.schedule:
            wait = step.start - self.clock()
            if wait > 0:
                self._sleep_watching(min(wait, max(0.0, end - self.clock())))
            if self.clock() >= end:
                break
            undo = self._inject(step)
            self.report.faults.add(FAULT_LABELS[step.kind])
            self._sleep_watching(max(0.0, min(step.duration, end - self.clock())))
            undo()
        remaining = end - self.clock()
        if remaining > 0:
            self._sleep_watching(remaining)

    def _inject(self, step: FaultStep):
        """Aplica a falta e devolve a função que a desfaz."""
        cluster = self.cluster
        kind = step.kind
        if kind in ("kill_leader", "isolate_leader", "leader_link_down"):
            leader = cluster.current_leader()
            target = leader if leader is not None else step.victims[0]
            who = f"nó {target}" + ("" if leader is not None else ", sem líder: sorteado")
        else:
            target = step.victims[0] if step.victims else None
            who = ""
        if kind in ("kill_random", "kill_leader"):
            self._event(f"{FAULT_LABELS[kind]}: {who or f'nó {target}'}")
            cluster.kill(target)
            return lambda: self._restart([target])
        if kind in ("kill_minority", "kill_all"):
            victims = list(step.victims)
            self._event(f"{FAULT_LABELS[kind]}: nós {victims}")
            cluster.kill_many(victims)
            return lambda: self._restart(victims)
        if kind == "terminate":
            self._event(f"{FAULT_LABELS[kind]}: nó {target}")
            code = cluster.terminate(target)
            if code not in (0, None):
                cluster.problems.append(f"o nó {target} saiu com código {code} depois de "
                                        f"SIGTERM; fim do log:\n"
                                        f"{indent(cluster.nodes[target].log_tail(15))}")
            return lambda: self._restart([target])
        if kind in ("partition", "bridge"):
            blocked = self._blocked_between_groups(step.groups)
            self._event(f"{FAULT_LABELS[kind]}: " + " | ".join(
                " ".join(map(str, group)) for group in step.groups)
                + (f", ponte {target}" if kind == "bridge" else ""))
            self._set_partition(blocked)
            return self._heal
        if kind == "isolate_leader":
            rest = tuple(position for position in range(self.config.nodes)
                         if position != target)
            self._event(f"{FAULT_LABELS[kind]}: {who}")
            self._set_partition(self._blocked_between_groups(((target,), rest)))
            return self._heal
        if kind == "cut_links":
            blocked: dict = {}
            for first, second in step.links:
                blocked.setdefault(first, set()).add(second)
                blocked.setdefault(second, set()).add(first)
            self._event(f"{FAULT_LABELS[kind]}: "
                        + " ".join(f"{a}-{b}" for a, b in step.links))
            self._set_partition(blocked)
            return self._heal
        if kind == "kill_and_partition":
            self._event(f"{FAULT_LABELS[kind]}: nó {target} morto, resto em "
                        + " | ".join(" ".join(map(str, group)) for group in step.groups))
            cluster.kill(target)
            self._set_partition(self._blocked_between_groups(step.groups))

            def undo() -> None:
                self._heal()
                self._restart([target])
            return undo
        if kind in ("link_down", "leader_link_down"):
            self._event(f"{FAULT_LABELS[kind]}: {who or f'nó {target}'}")
            self.netns.set_link(target, False)
            return lambda: self._netns_heal(f"cabo do nó {target} religado")
        if kind == "route_cut":
            self._event(f"{FAULT_LABELS[kind]}: "
                        + " ".join(f"{a}-{b}" for a, b in step.links))
            for first, second in step.links:
                self.netns.cut_route(first, second)
            return lambda: self._netns_heal("rotas restauradas")
        raise ValueError(f"tipo de falta desconhecido: {kind}")

    def _blocked_between_groups(self, groups: tuple) -> dict:
        blocked: dict = {}
        for group in groups:
            others = {position for other in groups if other is not group
                      for position in other}
            for position in group:
                blocked[position] = others
        return blocked

    def _set_partition(self, blocked: dict) -> None:
        """Manda a cada nó vivo a lista de pares com quem ele não pode falar."""
        urls = self.cluster.urls
        for position, node in enumerate(self.cluster.nodes):
            if not node.is_running():
                continue
            body = {"blocked": [urls[other] for other in sorted(blocked.get(position, ()))]}
            result = client_request(node.host, node.port, "POST", "/admin/partition",
                                    json.dumps(body).encode("utf-8"), 3.0)
            if result.outcome != "ok":
                self._event(f"aviso: /admin/partition sem resposta do nó {position} "
                            f"({result.error})")
            elif result.status != 200:
                self.report.problems.append(
                    f"/admin/partition no nó {position} respondeu {result.status}: "
                    f"{result.payload}")

    def _heal(self) -> None:
        self._event("partição desfeita")
        self._set_partition({})

    def _netns_heal(self, text: str) -> None:
        self._event(text)
        self.netns.heal()

    def _restart(self, positions: list) -> None:
        started = []
        for position in positions:
            if not self.cluster.nodes[position].is_running():
                self.cluster.start(position)
                started.append(position)
        if started:
            self._event(f"reiniciados: nós {started}")
            # Uma partição aplicada antes de o nó abrir a porta não chegaria a ele.
            self.cluster.wait_all_answering()

    # ---- fim: recuperação e conferências -----------------------------------

    def _recover_everything(self) -> None:
        cluster = self.cluster
        self._event("fim das faltas: rede inteira e todos os nós de volta")
        if self.netns is not None:
            self.netns.heal()
        cluster.start_all()
        cluster.wait_all_answering()
        self._set_partition({})
        leader_status = cluster.wait_converged(CONVERGENCE_TIMEOUT, MARKER_KEY)
        if leader_status is None:
            self.report.problems.append(
                f"o cluster não convergiu em {CONVERGENCE_TIMEOUT:.0f} s depois do fim das "
                f"faltas (um líder aceito por todos e logs iguais e aplicados):\n"
                + cluster.describe())
            return
        self.final_status = leader_status
        self._event(f"convergiu: líder {leader_status['id']}, termo {leader_status['term']}, "
                    f"last_applied {leader_status['last_applied']}")

    def _final_reads(self) -> Optional[list]:
        """Lê cada chave pelo líder, como operações de um cliente de verificação."""
        cluster = self.cluster
        leader = cluster.agreed_leader()
        if leader is None:
            self.report.problems.append("sem líder para as leituras finais:\n"
                                        + cluster.describe())
            return None
        node = cluster.nodes[leader]
        reads = []
        for number, key in enumerate(self.keys, start=1):
            for _ in range(10):
                operation = Operation("verificação", number, "get", key, invoke=self.clock())
                result = client_request(node.host, node.port, "GET", f"/kv/{key}", None,
                                        CLIENT_TIMEOUT)
                operation.response = self.clock()
                if result.outcome == "ok" and result.status in (200, 404):
                    operation.status = "ok"
                    operation.output = ((True, result.payload["value"])
                                        if result.status == 200 else (False, None))
                    reads.append(operation)
                    break
                time.sleep(0.2)
            else:
                self.report.problems.append(f"leitura final de {key} falhou 10 vezes "
                                            f"seguidas no líder {leader}")
                return None
        return reads

    def _final_checks(self) -> None:
        report = self.report
        cluster = self.cluster
        with self.history_lock:
            history = list(self.history)
        for operation in history:
            report.operations.add(f"{operation.kind} {operation.status}")
        if self.unexpected_answers:
            report.problems.append(f"{len(self.unexpected_answers)} respostas inesperadas "
                                   f"a clientes, por exemplo:\n"
                                   + indent("\n".join(self.unexpected_answers[:10])))
        final_reads = None
        if self.final_status is not None:
            final_reads = self._final_reads()

        statuses = cluster.statuses()
        for position in range(len(cluster.slots)):
            code = cluster.terminate(position)
            if code not in (0, None):
                report.problems.append(f"o nó {position} saiu com código {code} ao parar "
                                       f"com SIGTERM no fim")

        if final_reads is not None:
            replay = self._check_replicas(statuses, final_reads)
            executed_at = None
            if replay is not None:
                resolution = resolve_with_log(history, replay.entries,
                                              final_reads[0].invoke)
                report.problems.extend(resolution.problems)
                report.resolution = resolution.summary()
                history = resolution.history
                executed_at = resolution.executed_at
            if self.config.history_path:
                save_history(self.config.history_path, history + final_reads)
                self._event(f"histórico gravado em {self.config.history_path}")
            self._event(f"conferindo a linearizabilidade de {len(history)} operações")
            self._check_linearizable(history + final_reads, executed_at)
            self._check_acknowledged_writes(history, final_reads)

        crash_lines = cluster.crash_lines()
        if crash_lines:
            report.problems.append("linhas de erro nos logs dos nós:\n"
                                   + indent("\n".join(crash_lines[:20])))

    def _check_linearizable(self, history: list, executed_at: Optional[dict]) -> None:
        started = time.monotonic()
        if executed_at is None:
            result = check_linearizability(history)
            segments = 1
        else:
            result, segments = check_in_segments(history, executed_at)
        elapsed = time.monotonic() - started
        if result.ok:
            self.report.linearizability = (f"ok ({result.operations} operações conferidas em "
                                           f"{segments} trechos, {result.states} estados, "
                                           f"{elapsed:.1f} s)")
            return
        if result.inconclusive:
            self.report.linearizability = f"inconclusiva ({elapsed:.1f} s)"
        else:
            self.report.linearizability = f"VIOLADA ({elapsed:.1f} s)"
        self.report.problems.append(result.message)

    def _check_acknowledged_writes(self, history: list, final_reads: list) -> None:
        lost = find_unexplained_writes(history, final_reads)
        if lost:
            self.report.problems.append(f"{len(lost)} escrita(s) confirmada(s) sem "
                                        f"explicação no estado final:\n"
                                        + indent("\n".join(lost[:20])))

    def _check_replicas(self, statuses: list, final_reads: list):
        """Lê o log de cada nó do disco, reaplica e compara entre nós e com as leituras.

        Devolve o log reaplicado de um dos nós (NodeReplay), ou None se os
        logs não puderam ser lidos.
        """
        report = self.report
        applied = {status["last_applied"] for status in statuses if status is not None}
        if len(applied) != 1 or any(status is None for status in statuses):
            report.problems.append(f"last_applied diferente entre os nós no fim: "
                                   f"{[status and status['last_applied'] for status in statuses]}")
            return None
        last_applied = applied.pop()
        try:
            replays = self.cluster.replay_logs(up_to=last_applied)
        except StorageError as error:
            report.problems.append(f"um log não pôde ser lido do disco no fim: {error}")
            return None
        # Os nós param um depois do outro, e os que ainda rodam podem eleger um
        # líder novo, que grava a entrada vazia do termo dele depois de
        # last_applied. Por isso só o log até last_applied precisa ser igual.
        for replay in replays:
            replay.entries = [entry for entry in replay.entries
                              if entry.index <= last_applied]
        reference = replays[0]
        for replay in replays[1:]:
            if replay.entries != reference.entries:
                report.problems.append(self._describe_log_difference(reference, replay))
            if replay.data != reference.data:
                keys = sorted(set(replay.data) | set(reference.data))
                differing = [key for key in keys
                             if replay.data.get(key) != reference.data.get(key)]
                report.problems.append(f"máquinas de estados diferentes entre os nós "
                                       f"{reference.node_id} e {replay.node_id} nas chaves "
                                       f"{differing[:10]}")
        for read in final_reads:
            found, value = read.output
            stored = reference.data.get(read.key, _MISSING)
            if (stored is not _MISSING) != found or (found and stored != value):
                report.problems.append(f"a chave {read.key} vale {value!r} na leitura final "
                                       f"e {stored!r} no log reaplicado do nó "
                                       f"{reference.node_id}")
        if not report.problems:
            report.convergence = (f"{len(replays)} nós com last_applied={last_applied}, "
                                  f"logs iguais até esse índice e os "
                                  f"mesmos valores em {len(self.keys)} chaves")
        return reference

    @staticmethod
    def _describe_log_difference(first, second) -> str:
        for position, (a, b) in enumerate(zip(first.entries, second.entries)):
            if a != b:
                return (f"logs diferentes entre os nós {first.node_id} e {second.node_id} "
                        f"no índice {a.index}: {a} contra {b}")
        return (f"logs de tamanhos diferentes: nó {first.node_id} com "
                f"{len(first.entries)} entradas, nó {second.node_id} com "
                f"{len(second.entries)}")


def find_unexplained_writes(history: list, final_reads: list) -> list:
    """Lista escritas confirmadas que faltam no estado final sem explicação.

    Uma escrita confirmada W pode faltar no fim só se outra escrita U na mesma
    chave (confirmada ou de resultado desconhecido) pode ter acontecido depois
    dela, isto é, se U não terminou antes de W começar. O valor final também
    precisa ter sido gravado por alguma escrita.
    """
    writes_by_key: dict = {}
    for operation in history:
        if operation.kind != "get" and operation.status in ("ok", "unknown"):
            writes_by_key.setdefault(operation.key, []).append(operation)
    lost = []
    for read in final_reads:
        found, value = read.output
        writes = writes_by_key.get(read.key, [])
        if found and not any(write.kind == "put" and write.value == value
                             for write in writes):
            lost.append(f"{read.key} terminou com {value!r}, que nenhuma escrita gravou")
        for write in writes:
            if write.status != "ok":
                continue
            present = (write.kind == "put" and found and value == write.value) or \
                      (write.kind == "delete" and not found)
            if present:
                continue
            overwritten = any(other is not write
                              and not (other.status == "ok" and other.response < write.invoke)
                              for other in writes)
            if not overwritten:
                lost.append(f"escrita confirmada perdida: {write.describe()}; valor final: "
                            f"{value if found else 'ausente'}")
    return lost


@dataclass
class LogResolution:
    """O histórico com as escritas de resultado desconhecido resolvidas pelo log final."""

    history: list
    problems: list = field(default_factory=list)
    # Índice do log em que cada escrita foi executada, por (client_id, op_id).
    executed_at: dict = field(default_factory=dict)
    applied: int = 0
    never_applied: int = 0
    unresolved: int = 0

    def summary(self) -> str:
        return (f"{self.applied} aplicadas, {self.never_applied} nunca aplicadas, "
                f"{self.unresolved} sem como identificar no log")


def _command_identity(command: dict) -> Optional[tuple]:
    """Identifica a operação de cliente que gerou um comando do log, se possível."""
    if command.get("client_id") is not None:
        return ("sessão", command["client_id"], command["sequence"])
    if command.get("op") == "put":
        return ("valor", json.dumps(command.get("value"), sort_keys=True))
    return None


def client_uses_session(client_id: str) -> bool:
    """Diz se o cliente manda client_id e sequence nos PUTs.

    Metade dos clientes (c0, c2, ...) manda e a outra metade não, para exercitar
    os dois caminhos do nó. Os DELETEs levam sessão sempre, porque só com ela o
    comando pode ser achado no log final.
    """
    return client_id[1:].isdigit() and int(client_id[1:]) % 2 == 0


def _operation_identity(operation: Operation) -> Optional[tuple]:
    if operation.kind == "delete" or client_uses_session(operation.client_id):
        return ("sessão", operation.client_id, operation.op_id)
    if operation.kind == "put":
        return ("valor", json.dumps(operation.value, sort_keys=True))
    return None


def resolve_with_log(history: list, entries: list, final_read_start: float) -> LogResolution:
    """Confere o histórico contra o log final e resolve as escritas desconhecidas.

    O log final, lido do disco depois que todos os nós convergiram e pararam,
    é todo comprometido e não muda mais. Com ele:

      - cada escrita confirmada precisa estar no índice que a resposta deu;
      - nenhum comando sem sessão pode ter sido executado duas vezes;
      - uma escrita desconhecida que não está no log nunca teve efeito e sai
        da conferência ("failed");
      - uma escrita desconhecida executada no índice i passa a "ok", com o
        resultado da reaplicação e um fim conhecido. Ela foi comprometida antes
        de qualquer entrada de índice maior, então antes da resposta de toda
        escrita confirmada com índice maior que i e antes das leituras finais.

    Comandos com a mesma sessão (client_id, sequence) aparecem no log mais de
    uma vez quando um pedido foi repetido, mas a máquina de estados executa só
    o primeiro. Deletes sem sessão não têm identificação no log e ficam como
    estão.
    """
    store = KeyValueStore()
    executed: dict = {}
    problems = []
    for entry in entries:
        command = entry.command
        identity = _command_identity(command) if command is not None else None
        duplicate = False
        if command is not None and command.get("client_id") is not None:
            previous = store.sessions.get(command["client_id"])
            duplicate = previous is not None and command["sequence"] <= previous[0]
        result = store.apply(entry)
        if identity is None or duplicate:
            continue
        if identity in executed:
            problems.append(f"o comando {command} foi executado duas vezes, nos índices "
                            f"{executed[identity][0]} e {entry.index}")
            continue
        executed[identity] = (entry.index, command, result)
    acknowledged = sorted((operation.index, operation.response) for operation in history
                          if operation.kind != "get" and operation.status == "ok")
    # Menor resposta entre as escritas confirmadas de índice maior que cada posição.
    bounds = [final_read_start] * (len(acknowledged) + 1)
    for position in range(len(acknowledged) - 1, -1, -1):
        bounds[position] = min(bounds[position + 1], acknowledged[position][1])
    indexes = [index for index, _ in acknowledged]
    first_index = entries[0].index if entries else 1
    resolution = LogResolution([], problems)
    for operation in history:
        if operation.kind == "get" or operation.status not in ("ok", "unknown"):
            resolution.history.append(operation)
            continue
        identity = _operation_identity(operation)
        found = executed.get(identity) if identity is not None else None
        if operation.status == "ok":
            if found is not None:
                resolution.executed_at[(operation.client_id, operation.op_id)] = found[0]
            elif identity is not None:
                problems.append(f"a escrita confirmada {operation.describe()} não foi "
                                f"executada em nenhum índice do log final")
            position = operation.index - first_index
            at_index = entries[position] if 0 <= position < len(entries) else None
            if at_index is None or at_index.command is None or \
                    at_index.command.get("key") != operation.key or \
                    (identity is not None and _command_identity(at_index.command) != identity):
                problems.append(f"a escrita confirmada {operation.describe()} não está no "
                                f"índice {operation.index} do log final: "
                                f"{at_index.command if at_index else 'índice inexistente'}")
            resolution.history.append(operation)
            continue
        if identity is None:
            resolution.unresolved += 1
            resolution.history.append(operation)
            continue
        resolved = dataclasses.replace(operation)
        if found is None:
            resolved.status = "failed"
            resolution.never_applied += 1
        else:
            index, _, result = found
            resolution.executed_at[(operation.client_id, operation.op_id)] = index
            resolved.status = "ok"
            resolved.index = index
            resolved.response = bounds[bisect.bisect_right(indexes, index)]
            if operation.kind == "delete":
                resolved.output = bool(result.get("found"))
            resolution.applied += 1
        resolution.history.append(resolved)
    return resolution


def check_in_segments(history: list, executed_at: dict) -> tuple:
    """Confere a linearizabilidade chave por chave, em trechos separados por pausas.

    Uma pausa de uma chave é um instante t em que nenhuma operação dela está em
    andamento. Todas as escritas começadas antes de t já terminaram, e nenhuma
    outra começou, então o valor da chave em t é o da escrita executada por
    último no log entre as começadas antes de t. Cada trecho é conferido com
    `check_linearizability`, começando por uma escrita sintética desse valor e
    terminando com uma leitura sintética do valor no fim do trecho. A ordem do
    log é uma linearização válida de um Raft correto, então dividir não recusa
    um histórico certo. As linearizações dos trechos, emendadas, linearizam o
    histórico inteiro.

    `executed_at` vem de `resolve_with_log`. Devolve (resultado, trechos).
    """
    by_key: dict = {}
    for operation in history:
        if operation.status == "ok" or (operation.status == "unknown"
                                        and operation.kind != "get"):
            by_key.setdefault(operation.key, []).append(operation)
    # As operações sintéticas de cada trecho não entram na contagem.
    total = LinearizabilityResult(True, operations=sum(map(len, by_key.values())))
    segments = 0
    for key in sorted(by_key):
        operations = sorted(by_key[key], key=lambda operation: operation.invoke)
        for chunk in _segments_of_key(key, operations, executed_at):
            segments += 1
            result = check_linearizability(chunk)
            total.states += result.states
            if not result.ok:
                result.message = (f"trecho de {chunk[0].invoke:.3f} s a "
                                  f"{chunk[-1].invoke:.3f} s da chave {key!r}:\n"
                                  + result.message)
                return result, segments
    return total, segments


def _segments_of_key(key: str, operations: list, executed_at: dict):
    """Divide as operações de uma chave nas pausas; gera as listas a conferir."""
    writes = []
    state = _MISSING
    start = 0.0
    chunk: list = []
    horizon = -math.inf
    for operation in operations + [None]:
        if operation is not None and (not chunk or horizon >= operation.invoke):
            chunk.append(operation)
            if operation.kind != "get":
                writes.append(operation)
            end = operation.response if operation.status == "ok" else None
            horizon = max(horizon, math.inf if end is None else end)
            continue
        cut = None if operation is None else (horizon + operation.invoke) / 2
        prefix = [] if state is _MISSING else [
            Operation("estado do log", 0, "put", key, state, invoke=start, response=start,
                      status="ok")]
        suffix = []
        if cut is not None:
            state = _value_after(writes, executed_at)
            output = (False, None) if state is _MISSING else (True, state)
            suffix = [Operation("estado do log", 1, "get", key, invoke=cut, response=cut,
                                output=output, status="ok")]
        yield prefix + chunk + suffix
        if operation is None:
            return
        start = cut
        chunk = [operation]
        if operation.kind != "get":
            writes.append(operation)
        end = operation.response if operation.status == "ok" else None
        horizon = math.inf if end is None else end


def _value_after(writes: list, executed_at: dict) -> object:
    """Devolve o valor deixado pela escrita executada por último no log."""
    last = None
    last_index = -1
    for write in writes:
        index = executed_at.get((write.client_id, write.op_id))
        if index is not None and index > last_index:
            last, last_index = write, index
    if last is None or last.kind == "delete":
        return _MISSING
    return last.value


def save_history(path: str, history: list) -> None:
    """Grava o histórico em JSON, uma operação por linha, para análise posterior."""
    with open(path, "w", encoding="utf-8") as file:
        for operation in history:
            record = {name: getattr(operation, name) for name in (
                "client_id", "op_id", "kind", "key", "value", "invoke", "response",
                "output", "status", "index", "term")}
            file.write(json.dumps(record, ensure_ascii=False) + "\n")


def load_history(path: str) -> list:
    """Lê um histórico gravado por save_history."""
    history = []
    with open(path, encoding="utf-8") as file:
        for line in file:
            record = json.loads(line)
            if record["kind"] == "get" and record["output"] is not None:
                record["output"] = tuple(record["output"])
            history.append(Operation(**record))
    return history


class _Missing:
    def __repr__(self) -> str:
        return "ausente"


_MISSING = _Missing()


def run_chaos(config: ChaosConfig, output: Optional[TextIO] = None) -> ChaosReport:
    """Roda o caos descrito por `config` e devolve o relatório (já impresso em `output`)."""
    output = output or sys.stdout
    run = ChaosRun(config, output)
    report = run.run()
    print(report.format(), file=output, flush=True)
    return report


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tests/chaos.py",
        description="Caos em processos reais: clientes concorrentes, kill -9, reinícios e "
                    "partições, e no fim as conferências de linearizabilidade, escritas "
                    "confirmadas e convergência.")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="duração das faltas, em segundos (padrão: %(default)s)")
    parser.add_argument("--seed", type=int, default=None,
                        help="semente do nemesis e dos clientes (padrão: sorteada e impressa)")
    parser.add_argument("--nodes", type=int, default=5,
                        help="quantidade de nós, pelo menos 3 (padrão: %(default)s)")
    parser.add_argument("--clients", type=int, default=4,
                        help="clientes concorrentes (padrão: %(default)s)")
    parser.add_argument("--keys", type=int, default=6,
                        help="chaves disputadas pelos clientes (padrão: %(default)s)")
    parser.add_argument("--netns", action="store_true",
                        help="cada nó no seu namespace de rede, com cabos e rotas "
                             "cortados de verdade (exige root e ip netns)")
    parser.add_argument("--keep", action="store_true",
                        help="mantém a pasta com dados e logs dos nós mesmo sem falha")
    parser.add_argument("--save-history", default="", metavar="ARQUIVO",
                        help="grava o histórico dos clientes em ARQUIVO (JSON, uma operação "
                             "por linha)")
    parser.add_argument("--check-history", default="", metavar="ARQUIVO",
                        help="só confere a linearizabilidade de um histórico gravado com "
                             "--save-history e sai")
    parser.add_argument("--print-schedule", action="store_true",
                        help="só imprime o cronograma do nemesis e sai")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    if args.nodes < 3:
        parser.error("--nodes precisa ser pelo menos 3")

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    config = ChaosConfig(seed=seed, seconds=args.seconds, nodes=args.nodes,
                         clients=args.clients, keys=args.keys, netns=args.netns,
                         keep_folder=args.keep, history_path=args.save_history)

    if args.check_history:
        history = load_history(args.check_history)
        started = time.monotonic()
        result = check_linearizability(history)
        print(f"{len(history)} operações, {result.operations} conferidas, {result.states} "
              f"estados, {time.monotonic() - started:.1f} s: "
              + ("linearizável" if result.ok else result.message or "inconclusiva"))
        return 0 if result.ok else 1

    if args.print_schedule:
        print(f"cronograma do nemesis da semente {seed} ({args.seconds:g} s, "
              f"{args.nodes} nós{', netns' if args.netns else ''}):")
        for step in plan_schedule(seed, args.seconds, args.nodes, args.netns):
            print("  " + step.describe())
        return 0

    report = run_chaos(config)
    if report.skipped:
        return 2
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
