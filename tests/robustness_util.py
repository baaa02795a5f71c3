"""Peças comuns das provas de robustez (caos, durabilidade e entradas hostis).

Os três scripts (`chaos.py`, `durability.py`, `fuzz.py`) rodam tanto sozinhos,
pela linha de comando, quanto dentro dos testes curtos da suíte. Por isso o
cluster daqui não depende de unittest. `LocalCluster` cria os nós numa pasta e
lembra quais deles o próprio script derrubou. No fim, ele confere que nenhum
outro morreu, lê o log de cada nó do disco e refaz a máquina de estados de cada
um.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

TESTS_FOLDER = os.path.dirname(os.path.abspath(__file__))
PROJECT_ROOT = os.path.dirname(TESTS_FOLDER)
for _folder in (TESTS_FOLDER, PROJECT_ROOT):
    if _folder not in sys.path:
        sys.path.insert(0, _folder)

from cluster_util import NodeProcess, pick_free_ports  # noqa: E402
from raft_distribuido import DiskStorage, KeyValueStore  # noqa: E402

# Trechos de log que só aparecem quando um nó quebrou por dentro: uma exceção
# não tratada, o laço de eventos parado por erro, ou um 500 de um handler.
CRASH_MARKERS = ("Traceback", "erro fatal", "erro interno")

# Tempo máximo para um nó reiniciado voltar a responder a /status.
RESTART_TIMEOUT = 15.0

# Tempo máximo para um nó parar depois de SIGTERM.
STOP_TIMEOUT = 10.0


# ---- operações de cliente --------------------------------------------------

@dataclass
class ClientResult:
    """Resultado de uma requisição de cliente, já classificado.

    `outcome` é um de três valores:

      - "ok": houve resposta definitiva (qualquer status abaixo de 500);
      - "fail": a conexão nem abriu, então o pedido não chegou a nenhum nó;
      - "unknown": o pedido saiu e a resposta não veio, ou veio um 5xx. O
        comando pode ter sido aplicado ou não.
    """

    outcome: str
    status: int = 0
    payload: Any = None
    error: str = ""


def client_request(host: str, port: int, method: str, path: str, body: Optional[bytes],
                   timeout: float) -> ClientResult:
    """Faz uma requisição de cliente numa conexão nova e classifica o resultado."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        try:
            connection.connect()
        except OSError as error:
            return ClientResult("fail", error=f"conexão recusada ou sem rota: {error}")
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as error:
            return ClientResult("unknown", error=f"sem resposta: {error!r}")
        try:
            payload = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            payload = None
        outcome = "unknown" if response.status >= 500 else "ok"
        return ClientResult(outcome, response.status, payload)
    finally:
        connection.close()


# ---- cluster local ---------------------------------------------------------

@dataclass
class NodeSlot:
    """Um nó do cluster e o que o script sabe sobre ele."""

    node: NodeProcess
    # True enquanto o script deixou o nó parado de propósito.
    down_on_purpose: bool = False
    # Instante (monotônico) do último start(); serve para o prazo de volta.
    started_at: float = 0.0
    # Já conferido que respondeu a /status depois do último start().
    answered_since_start: bool = False


@dataclass
class NodeReplay:
    """Log de um nó lido do disco e a máquina de estados refeita com ele."""

    node_id: str
    entries: list
    data: dict
    last_index: int


class LocalCluster:
    """N nós `raft_distribuido.py` numa pasta, em portas livres de 127.0.0.1.

    `addresses` (pares host, porta) e `node_factory` trocam os endereços e a
    forma de iniciar cada nó, como no modo --netns do caos.

    O script marca cada parada que ele mesmo causa (`kill`, `terminate`). Um nó
    que some sem essa marca caiu de verdade, e `check_processes` relata a queda
    com o código de saída e o fim do log.
    """

    def __init__(self, size: int, folder: Optional[str] = None, *,
                 extra_args: tuple = (), host: str = "127.0.0.1",
                 node_factory: Optional[Callable[..., NodeProcess]] = None,
                 addresses: Optional[list] = None):
        self.owns_folder = folder is None
        self.folder = folder or tempfile.mkdtemp(prefix="raft-robustez-")
        self.problems: list = []
        if addresses is None:
            ports = pick_free_ports(size, host)
            addresses = [(host, port) for port in ports]
        urls = [f"http://{node_host}:{port}" for node_host, port in addresses]
        factory = node_factory or default_node_factory
        self.slots: list = []
        for position, (node_host, port) in enumerate(addresses):
            peers = [url for other, url in enumerate(urls) if other != position]
            node = factory(str(position), node_host, port, peers,
                           os.path.join(self.folder, f"no-{position}"),
                           os.path.join(self.folder, f"no-{position}.log"),
                           extra_args=extra_args, position=position)
            self.slots.append(NodeSlot(node))
        register_cleanup(self._stop_on_signal)

    @property
    def nodes(self) -> list:
        return [slot.node for slot in self.slots]

    @property
    def urls(self) -> list:
        return [slot.node.url for slot in self.slots]

    # ---- partida e parada --------------------------------------------------

    def start(self, position: int) -> None:
        slot = self.slots[position]
        slot.node.start()
        slot.down_on_purpose = False
        slot.started_at = time.monotonic()
        slot.answered_since_start = False

    def start_all(self) -> None:
        for position in range(len(self.slots)):
            if not self.slots[position].node.is_running():
                self.start(position)

    def kill(self, position: int) -> None:
        """`kill -9` pelo PID; não faz nada se o nó já está parado."""
        slot = self.slots[position]
        if not slot.node.is_running():
            return
        slot.down_on_purpose = True
        slot.node.kill()

    def kill_many(self, positions: list) -> None:
        """Manda SIGKILL a todos primeiro e só depois espera, para que morram juntos."""
        victims = [self.slots[position] for position in positions
                   if self.slots[position].node.is_running()]
        for slot in victims:
            slot.down_on_purpose = True
            slot.node.send_signal(signal.SIGKILL)
        for slot in victims:
            slot.node.kill()

    def terminate(self, position: int) -> Optional[int]:
        """Para o nó com SIGTERM e devolve o código de saída (None se não parou)."""
        slot = self.slots[position]
        if not slot.node.is_running():
            return None
        slot.down_on_purpose = True
        slot.node.send_signal(signal.SIGTERM)
        try:
            return slot.node.wait_exit(STOP_TIMEOUT)
        except Exception:  # subprocess.TimeoutExpired: o nó não parou a tempo.
            self.problems.append(f"o nó {slot.node.node_id} não parou em {STOP_TIMEOUT} s "
                                 f"depois de SIGTERM; foi morto com SIGKILL")
            slot.node.kill()
            return None

    def kill_all(self) -> None:
        """Mata com SIGKILL, pelo PID, todo nó ainda vivo."""
        for slot in self.slots:
            slot.node.cleanup()

    def _stop_on_signal(self) -> None:
        self.kill_all()
        print(f"os dados e os logs dos nós ficaram em {self.folder}", file=sys.stderr,
              flush=True)

    def cleanup(self, keep_folder: bool = False) -> None:
        """Mata todo nó ainda vivo e apaga a pasta, se ela foi criada aqui."""
        self.kill_all()
        unregister_cleanup(self._stop_on_signal)
        if self.owns_folder and not keep_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    # ---- saúde dos processos -----------------------------------------------

    def check_processes(self) -> list:
        """Relata nós que morreram sem o script pedir ou que não voltaram a tempo.

        Cada problema é relatado uma vez; a lista completa fica em `problems`.
        """
        found = []
        now = time.monotonic()
        for slot in self.slots:
            node = slot.node
            if slot.down_on_purpose or node.process is None:
                continue
            code = node.process.poll()
            if code is not None:
                slot.down_on_purpose = True
                found.append(f"o nó {node.node_id} morreu sozinho com código {code}; fim "
                             f"do log:\n{indent(node.log_tail(15))}")
                continue
            if not slot.answered_since_start:
                if node.status(timeout=0.5) is not None:
                    slot.answered_since_start = True
                elif now - slot.started_at > RESTART_TIMEOUT:
                    slot.answered_since_start = True
                    found.append(f"o nó {node.node_id} não respondeu a /status em "
                                 f"{RESTART_TIMEOUT:.0f} s depois de iniciado; fim do "
                                 f"log:\n{indent(node.log_tail(15))}")
        self.problems.extend(found)
        return found

    def wait_all_answering(self, timeout: float = RESTART_TIMEOUT) -> bool:
        """Espera todo nó rodando responder a /status; relata quem não respondeu."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_processes()
            if all(slot.answered_since_start or slot.down_on_purpose
                   for slot in self.slots):
                return True
            time.sleep(0.05)
        self.check_processes()
        return False

    def crash_lines(self) -> list:
        """Devolve as linhas dos logs que mostram um nó quebrado por dentro."""
        lines = []
        for node in self.nodes:
            for line in node.log_text().splitlines():
                if any(marker in line for marker in CRASH_MARKERS):
                    lines.append(f"nó {node.node_id}: {line.strip()}")
        return lines

    # ---- consultas ---------------------------------------------------------

    def statuses(self, timeout: float = 1.0) -> list:
        return [slot.node.status(timeout=timeout) if slot.node.is_running() else None
                for slot in self.slots]

    def current_leader(self) -> Optional[int]:
        """Devolve a posição do nó que se diz líder no maior termo, ou None."""
        best = None
        for position, status in enumerate(self.statuses(timeout=0.5)):
            if status is None or status.get("state") != "leader":
                continue
            if best is None or status["term"] > best[1]:
                best = (position, status["term"])
        return best[0] if best else None

    def agreed_leader(self) -> Optional[int]:
        """Devolve o líder se todos os nós respondem e concordam sobre ele e o termo."""
        statuses = self.statuses()
        if any(status is None for status in statuses):
            return None
        leaders = [position for position, status in enumerate(statuses)
                   if status["state"] == "leader"]
        if len(leaders) != 1:
            return None
        leader_status = statuses[leaders[0]]
        for status in statuses:
            if status["term"] != leader_status["term"] or \
                    status["leader_id"] != leader_status["id"]:
                return None
        return leaders[0]

    def describe(self) -> str:
        lines = []
        for slot, status in zip(self.slots, self.statuses()):
            if status is None:
                state = "parado" if not slot.node.is_running() else "sem resposta"
                lines.append(f"  nó {slot.node.node_id}: {state}")
                continue
            fields = ("state", "term", "leader_id", "commit_index", "last_applied",
                      "last_log_index")
            lines.append(f"  nó {slot.node.node_id}: "
                         + " ".join(f"{name}={status.get(name)}" for name in fields))
        return "\n".join(lines)

    def wait_converged(self, timeout: float, marker_key: str) -> Optional[dict]:
        """Espera um líder aceito por todos e os logs iguais e aplicados.

        Grava `marker_key` pelo líder, para que as entradas de termos antigos
        fiquem comprometidas (um líder só compromete entradas antigas junto com
        uma do próprio termo), e espera todos os nós aplicarem até ela com o
        mesmo último índice. Devolve o /status do líder, ou None no prazo.
        """
        deadline = time.monotonic() + timeout
        marker_index = None
        while time.monotonic() < deadline:
            leader = self.agreed_leader()
            if leader is None:
                time.sleep(0.1)
                continue
            if marker_index is None:
                node = self.slots[leader].node
                remaining = max(0.5, deadline - time.monotonic())
                result = client_request(node.host, node.port, "PUT", f"/kv/{marker_key}",
                                        json.dumps({"value": "fim"}).encode(),
                                        min(remaining, 5.0))
                if result.outcome == "ok" and result.status == 200:
                    marker_index = result.payload["index"]
                else:
                    time.sleep(0.1)
                continue
            statuses = self.statuses()
            if all(status is not None for status in statuses):
                last = {status["last_log_index"] for status in statuses}
                applied = {status["last_applied"] for status in statuses}
                committed = {status["commit_index"] for status in statuses}
                if len(last) == 1 and last == applied == committed and \
                        min(applied) >= marker_index:
                    return statuses[leader]
            time.sleep(0.1)
        return None

    # ---- disco -------------------------------------------------------------

    def replay_logs(self, up_to: Optional[int] = None) -> list:
        """Lê o log de cada nó (parado) e refaz a máquina de estados até `up_to`.

        Usa DiskStorage e KeyValueStore do próprio nó, então a leitura confere
        também os checksums. Levanta StorageError se um log estiver danificado.
        """
        replays = []
        for node in self.nodes:
            storage = DiskStorage(node.data_dir, lambda level, text: None)
            try:
                _, _, log = storage.open()
                # O log aberto lê os comandos do arquivo sob demanda; a lista
                # traz todos para a memória antes de fechar a pasta.
                entries = list(log)
            finally:
                storage.close()
            store = KeyValueStore()
            for entry in entries:
                if up_to is not None and entry.index > up_to:
                    break
                store.apply(entry)
            replays.append(NodeReplay(node.node_id, entries, dict(store.data),
                                      entries[-1].index if entries else 0))
        return replays


def indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def bullet(text: str) -> str:
    """Formata um texto de várias linhas como item de lista."""
    first, _, rest = text.partition("\n")
    return "  - " + first + ("\n" + indent(rest) if rest else "")


def default_node_factory(node_id: str, host: str, port: int, peers: list, data_dir: str,
                         log_path: str, *, extra_args: tuple, position: int) -> NodeProcess:
    """Cria um NodeProcess comum, em 127.0.0.1; `position` não é usado."""
    return NodeProcess(node_id, host, port, peers, data_dir, log_path,
                       extra_args=extra_args)


# Limpezas a fazer se o script receber SIGTERM no meio: matar os nós e apagar
# os namespaces criados. Rodam da mais nova para a mais antiga.
_cleanups_on_sigterm: list = []


def register_cleanup(callback: Callable[[], None]) -> None:
    _cleanups_on_sigterm.append(callback)


def unregister_cleanup(callback: Callable[[], None]) -> None:
    if callback in _cleanups_on_sigterm:
        _cleanups_on_sigterm.remove(callback)


def exit_on_sigterm() -> None:
    """Faz SIGTERM matar os nós iniciados, apagar os namespaces e sair com 143.

    Sem isto, um `kill` no script deixaria os nós rodando sem dono. As limpezas
    rodam dentro do tratador do sinal, porque uma exceção levantada ali pode cair
    num ponto em que o Python a ignora (um callback do coletor de lixo).
    """
    def stop(signal_number: int, _frame: Any) -> None:
        print(f"sinal {signal.Signals(signal_number).name} recebido: parando os nós",
              file=sys.stderr, flush=True)
        for callback in reversed(list(_cleanups_on_sigterm)):
            try:
                callback()
            except Exception as error:  # As outras limpezas ainda precisam rodar.
                print(f"falha na limpeza: {error!r}", file=sys.stderr, flush=True)
        os._exit(128 + signal_number)

    signal.signal(signal.SIGTERM, stop)


# ---- memória ---------------------------------------------------------------

def resident_memory_kib(pid: int) -> Optional[int]:
    """Lê VmRSS de /proc/<pid>/status, em KiB; None se o processo não existe."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as file:
            for line in file:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    return None


@dataclass
class Counter:
    """Contagem por rótulo, impressa em ordem decrescente."""

    counts: dict = field(default_factory=dict)

    def add(self, label: str, amount: int = 1) -> None:
        self.counts[label] = self.counts.get(label, 0) + amount

    def total(self) -> int:
        return sum(self.counts.values())

    def format(self, indent_text: str = "  ") -> str:
        ordered = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        return "\n".join(f"{indent_text}{label}: {count}" for label, count in ordered)


