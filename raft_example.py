#!/usr/bin/env python3
"""Raft em sala de aula: vários nós num só processo, com rede e relógio simulados.

Este arquivo roda o mesmo núcleo Raft de raft_distribuido.py (a classe RaftCore),
mas sem rede de verdade: as mensagens são chamadas de método entregues por uma
rede simulada, o tempo é um relógio simulado que salta de evento em evento, e
todo sorteio vem de uma única semente. Ele serve a dois públicos:

  - o professor, que mostra uma eleição, a replicação, a queda do líder e uma
    partição, passo a passo, com o estado de cada nó na tela;
  - os testes, que levam o núcleo por milhares de cronogramas de falhas
    (perdas, atrasos, duplicações, partições, quedas, pausas) e conferem a
    segurança do Raft depois de cada evento e a linearizabilidade das
    operações dos clientes no fim.

Uso:

    python3 raft_example.py                       demonstração completa, 5 nós
    python3 raft_example.py --scenario particao   só uma parte da demonstração
    python3 raft_example.py --list                lista os cenários
    python3 raft_example.py --step                espera Enter a cada passo
    python3 raft_example.py --seed 7              outra sorte: outro líder, outros tempos
    python3 raft_example.py --verify 20000        20 000 cronogramas aleatórios de falhas

A mesma semente repete a execução evento por evento. Quando a saída não é um
terminal, a demonstração roda sem pausas, e duas execuções com a mesma semente
escrevem exatamente o mesmo texto.

Um cenário próprio cabe em poucas linhas de Python, com os mesmos objetos que
os testes usam:

    from raft_example import Demo

    def meu_cenario(demo):
        demo.section("O líder cai", "O que acontece quando o líder para?")
        leader = demo.run_until_leader()
        demo.write("x", 1)
        demo.crash(leader)
        demo.run_until_leader()
        demo.show()

    Demo(nodes=3, seed=7).run(meu_cenario)

Seções deste arquivo:

    1. Configuração da simulação
    2. Rede simulada
    3. Nós e clientes simulados
    4. Cluster: relógio, eventos e falhas
    5. Verificação de segurança
    6. Linearizabilidade
    7. Cronogramas aleatórios
    8. Demonstração narrada
    9. Linha de comando
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import heapq
import itertools
import json
import logging
import math
import os
import random
import sys
import textwrap
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import raft_distribuido
from raft_distribuido import (
    DEFAULT_ELECTION_TIMEOUT_MAX_MS,
    DEFAULT_ELECTION_TIMEOUT_MIN_MS,
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    ROLE_NAMES_PT,
    AppendEntries,
    AppendEntriesReply,
    KeyValueStore,
    LogEntry,
    MemoryStorage,
    RaftCore,
    Ready,
    RequestVote,
    RequestVoteReply,
    Role,
    decode_append_entries,
    decode_append_entries_reply,
    decode_request_vote,
    decode_request_vote_reply,
    encode_message,
    persist_ready,
    translate_argparse_messages,
)


# ============================================================================
# 1. Configuração da simulação
# ============================================================================

# Semente da demonstração quando --seed não é dado. Qualquer semente serve; a
# narração descreve o que de fato acontece em cada execução.
DEMO_SEED = 3


@dataclass
class SimConfig:
    """Parâmetros de uma simulação. Tempos em segundos do relógio simulado."""

    # Os mesmos padrões do nó real (seção 1 de raft_distribuido.py).
    election_timeout_min: float = DEFAULT_ELECTION_TIMEOUT_MIN_MS / 1000
    election_timeout_max: float = DEFAULT_ELECTION_TIMEOUT_MAX_MS / 1000
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL_MS / 1000
    check_quorum: bool = True
    # Latência de cada mensagem, sorteada uniformemente neste intervalo. Uma
    # latência variável já basta para que mensagens cheguem fora de ordem.
    min_delay: float = 0.002
    max_delay: float = 0.010
    # Probabilidade de uma mensagem se perder, e de chegar duas vezes.
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    # Quanto o remetente de um RPC perdido espera até saber da falha. O nó
    # real espera o maior entre 0,2 s e o timeout máximo de eleição.
    rpc_failure_timeout: float = DEFAULT_ELECTION_TIMEOUT_MAX_MS / 1000
    # "copy" copia cada mensagem campo a campo; "json" a codifica e decodifica
    # com as funções do nó real, como se ela passasse pela rede.
    wire: str = "copy"
    # Um cliente desiste de uma tentativa depois de client_attempt_timeout e
    # da operação inteira depois de client_operation_timeout.
    client_attempt_timeout: float = 0.5
    client_operation_timeout: float = 3.0


# ============================================================================
# 2. Rede simulada
# ============================================================================

class Network:
    """A rede simulada: latência, perdas, duplicações, partições e filtros.

    Ela só decide o destino de cada mensagem; quem agenda as entregas é o
    Cluster. Uma partição vale também para as mensagens já em trânsito entre
    nós: o Cluster confere `connected` de novo na hora da entrega. Clientes
    alcançam qualquer nó no ar; partições e enlaces cortados valem só entre nós.
    """

    def __init__(self, rng: random.Random, config: SimConfig):
        self.rng = rng
        self.min_delay = config.min_delay
        self.max_delay = config.max_delay
        self.drop_rate = config.drop_rate
        self.duplicate_rate = config.duplicate_rate
        # Nó -> número do grupo da partição; None quando a rede está inteira.
        # Um nó que não aparece em nenhum grupo fica isolado.
        self.groups: Optional[dict] = None
        # Enlaces cortados num sentido só: pares (origem, destino).
        self.blocked_links: set = set()
        # Funções (origem, destino, mensagem) -> bool; True descarta a
        # mensagem. Os testes as usam para montar cenários exatos.
        self.filters: list = []

    def partition(self, groups: list) -> None:
        self.groups = {}
        for number, group in enumerate(groups):
            for node_id in group:
                self.groups[node_id] = number

    def heal(self) -> None:
        """Desfaz partições e enlaces cortados (os filtros ficam)."""
        self.groups = None
        self.blocked_links.clear()

    def connected(self, source: str, destination: str) -> bool:
        if (source, destination) in self.blocked_links:
            return False
        if self.groups is None:
            return True
        group = self.groups.get(source)
        return group is not None and group == self.groups.get(destination)

    def delays(self, source: str, destination: str, message: Any,
               between_nodes: bool = True) -> list:
        """Sorteia o destino de uma mensagem: [] se ela se perde, senão o
        atraso de cada cópia entregue (duas cópias quando ela se duplica)."""
        for drop in self.filters:
            if drop(source, destination, message):
                return []
        if between_nodes and not self.connected(source, destination):
            return []
        if self.drop_rate and self.rng.random() < self.drop_rate:
            return []
        delays = [self.rng.uniform(self.min_delay, self.max_delay)]
        if self.duplicate_rate and self.rng.random() < self.duplicate_rate:
            delays.append(self.rng.uniform(self.min_delay, self.max_delay))
        return delays


_DECODERS = {
    RequestVote: decode_request_vote,
    RequestVoteReply: decode_request_vote_reply,
    AppendEntries: decode_append_entries,
    AppendEntriesReply: decode_append_entries_reply,
}


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_json(item) for item in value]
    return value


def copy_message(message: Any, wire: str = "copy") -> Any:
    """Devolve a cópia da mensagem que o destino recebe.

    Cada nó recebe objetos próprios, como receberia da rede: se o núcleo
    guardasse por engano um objeto de outro nó, a cópia impede que o engano
    passe despercebido. Com wire="json", a cópia passa pelo mesmo
    encode_message e pelas mesmas funções decode_* do nó real.
    """
    if wire == "json":
        data = json.loads(json.dumps(encode_message(message)))
        return _DECODERS[type(message)](data)
    if isinstance(message, AppendEntries):
        entries = [LogEntry(entry.term, entry.index, _copy_json(entry.command))
                   for entry in message.entries]
        return dataclasses.replace(message, entries=entries)
    return dataclasses.replace(message)


# ============================================================================
# 3. Nós e clientes simulados
# ============================================================================

class SimNode:
    """Um servidor simulado: o núcleo Raft, o seu "disco" e a sua máquina de estados.

    Numa queda, `core` e `kv` somem (estado volátil) e `storage` fica, como
    um disco depois do fsync.
    """

    def __init__(self, node_id: str, peers: list):
        self.node_id = node_id
        self.peers = peers
        self.storage = MemoryStorage()
        self.core: Optional[RaftCore] = None
        self.kv: Optional[KeyValueStore] = None
        # Aumenta a cada queda. Uma resposta endereçada a uma encarnação
        # anterior é descartada, porque o núcleo que fez o pedido não existe mais.
        self.incarnation = 0
        # Um nó pausado (como um processo parado pelo sistema operacional)
        # não trata eventos até este instante; eles esperam na fila.
        self.paused_until = 0.0
        # Escritas de clientes à espera da aplicação: índice -> [(termo, cliente, pedido)].
        self.pending_writes: dict = {}
        # Leituras registradas no núcleo: read_id -> (cliente, pedido).
        self.pending_reads: dict = {}
        # Leituras confirmadas que esperam a máquina de estados chegar ao
        # índice: [(índice, read_id)].
        self.reads_waiting: list = []
        # Queda agendada para o próximo Ready que grave ou envie algo: o
        # número de mensagens desse Ready que saem antes da queda.
        self.crash_in_next_ready: Optional[int] = None

    @property
    def up(self) -> bool:
        return self.core is not None


@dataclass
class ClientRequest:
    """Pedido de um cliente a um nó."""

    client_id: str
    op_id: int
    attempt: int
    kind: str                # "put", "get" ou "delete"
    key: str
    value: Any = None
    # Sessão do cliente (seção 5 de raft_distribuido.py): todas as tentativas
    # de uma escrita levam a mesma sequência e são aplicadas uma vez só.
    sequence: int = 0


@dataclass
class ClientResponse:
    """Resposta de um nó a um cliente.

    `status` é "ok", "not_leader" (com a dica `leader_hint`), "lost" (outra
    entrada foi comprometida no índice do pedido, numa troca de líder) ou
    "unavailable" (o nó estava fora do ar).
    """

    op_id: int
    attempt: int
    status: str
    node_id: str
    output: Any = None
    leader_hint: Optional[str] = None
    index: int = 0
    term: int = 0


@dataclass
class Operation:
    """Uma operação de cliente no histórico que a linearizabilidade confere.

    `invoke` e `response` são os instantes, no relógio simulado, em que o
    cliente fez o pedido e recebeu a resposta. Vários eventos podem cair no
    mesmo instante simulado, mas são tratados um depois do outro, e
    `invoke_stamp` e `response_stamp` guardam essa ordem. Históricos escritos
    à mão podem deixá-los em 0; então instantes iguais contam como simultâneos.
    `output` é None para put, o
    booleano `found` para delete e o par (encontrada, valor) para get. Uma
    escrita sem resposta fica com status "unknown": ela pode ter sido aplicada
    ou não, em qualquer instante depois de `invoke`. Uma leitura sem resposta
    fica com status "failed" e não entra na conferência.
    """

    client_id: str
    op_id: int
    kind: str
    key: str
    value: Any = None
    invoke: float = 0.0
    response: Optional[float] = None
    output: Any = None
    status: str = "pending"      # "pending", "ok", "unknown" ou "failed"
    attempts: int = 0
    index: int = 0               # onde a escrita confirmada ficou no log
    term: int = 0
    invoke_stamp: int = 0
    response_stamp: int = 0

    def describe(self) -> str:
        if self.kind == "put":
            text = f"put {self.key}={self.value}"
        else:
            text = f"{self.kind} {self.key}"
        if self.status == "ok" and self.kind == "get":
            found, value = self.output
            text += f" -> {value if found else 'ausente'}"
        elif self.status == "ok" and self.kind == "delete":
            text += f" -> {'encontrada' if self.output else 'não encontrada'}"
        end = f"{self.response:.3f}" if self.response is not None else "?"
        return (f"{self.client_id} op {self.op_id}: {text} [{self.invoke:.3f}s, {end}s] "
                f"({self.status})")


def _operation_output(kind: str, result: Any) -> Any:
    if kind == "delete" and isinstance(result, dict):
        return bool(result.get("found"))
    return None


class Client:
    """Um cliente que faz uma operação por vez e tenta de novo quando falha.

    Ele procura o líder sozinho: começa por um nó sorteado, segue a dica das
    respostas "not_leader" e troca de nó quando uma tentativa fica sem
    resposta por `client_attempt_timeout`. Depois de
    `client_operation_timeout` ele desiste; uma escrita abandonada fica com
    resultado desconhecido, porque alguma tentativa pode ter chegado ao log.
    """

    def __init__(self, cluster: "Cluster", client_id: str):
        self.cluster = cluster
        self.client_id = client_id
        self.leader_hint: Optional[str] = None
        self.sequence = 0
        self.operation: Optional[Operation] = None
        self._operation_count = 0
        self._on_done: Optional[Callable] = None
        self._deadline = 0.0
        self._retry = True
        # False entre o fim de uma tentativa e o início da próxima, para que
        # um timeout atrasado da tentativa anterior seja ignorado.
        self._attempt_open = False

    @property
    def idle(self) -> bool:
        return self.operation is None

    def submit(self, kind: str, key: str, value: Any = None, *,
               on_done: Optional[Callable] = None, target: Optional[str] = None,
               retry: bool = True) -> Operation:
        """Inicia uma operação e devolve o seu registro no histórico.

        `on_done(cliente, operação)` é chamada quando ela termina. `target`
        escolhe o nó da primeira tentativa; com retry=False não há segunda.
        """
        if self.operation is not None:
            raise RuntimeError(f"o cliente {self.client_id} já tem uma operação em "
                               f"andamento; espere ela terminar")
        if kind not in ("put", "get", "delete"):
            raise ValueError(f"operação inválida: {kind!r}; use put, get ou delete")
        self._operation_count += 1
        if kind != "get":
            self.sequence += 1
        operation = Operation(self.client_id, self._operation_count, kind, key, value,
                              invoke=self.cluster.now,
                              invoke_stamp=next(self.cluster.stamps))
        self.cluster.history.append(operation)
        self.operation = operation
        self._on_done = on_done
        self._deadline = self.cluster.now + self.cluster.config.client_operation_timeout
        self._retry = retry
        if target is not None:
            self.leader_hint = target
        self._attempt(operation.op_id)
        return operation

    def _attempt(self, op_id: int) -> None:
        operation = self.operation
        if operation is None or operation.op_id != op_id:
            return
        operation.attempts += 1
        self._attempt_open = True
        target = self.leader_hint or self.cluster.rng.choice(self.cluster.node_ids)
        request = ClientRequest(self.client_id, operation.op_id, operation.attempts,
                                operation.kind, operation.key, operation.value,
                                self.sequence if operation.kind != "get" else 0)
        self.cluster._send_client_request(self, target, request)
        self.cluster.schedule(self.cluster.config.client_attempt_timeout,
                              self._on_attempt_timeout, operation.op_id, operation.attempts)

    def _on_attempt_timeout(self, op_id: int, attempt: int) -> None:
        operation = self.operation
        if (operation is None or operation.op_id != op_id or operation.attempts != attempt
                or not self._attempt_open):
            return
        self.leader_hint = None
        self._schedule_retry(0.0)

    def _schedule_retry(self, delay: float) -> None:
        self._attempt_open = False
        operation = self.operation
        if not self._retry or self.cluster.now + delay >= self._deadline:
            self._give_up()
            return
        self.cluster.schedule(delay, self._attempt, operation.op_id)

    def _give_up(self) -> None:
        operation = self.operation
        operation.status = "failed" if operation.kind == "get" else "unknown"
        self.cluster._notify(self.client_id, logging.INFO,
                             f"desistiu de {operation.kind} {operation.key} depois de "
                             f"{operation.attempts} tentativa(s) sem confirmação")
        self._finish()

    def on_response(self, response: ClientResponse) -> None:
        operation = self.operation
        if operation is None or response.op_id != operation.op_id:
            return
        if response.status == "ok":
            operation.status = "ok"
            operation.response = self.cluster.now
            operation.response_stamp = next(self.cluster.stamps)
            operation.output = response.output
            operation.index, operation.term = response.index, response.term
            self.leader_hint = response.node_id
            self._finish()
            return
        # Só a resposta da tentativa atual decide a próxima; as antigas
        # chegaram atrasadas.
        if response.attempt != operation.attempts or not self._attempt_open:
            return
        if response.status == "not_leader":
            hint = response.leader_hint
            self.leader_hint = hint if hint != response.node_id else None
            self._schedule_retry(0.01 if self.leader_hint else 0.05)
        else:
            self.leader_hint = None
            self._schedule_retry(0.01 if response.status == "lost" else 0.05)

    def _finish(self) -> None:
        operation, on_done = self.operation, self._on_done
        self.operation = None
        self._on_done = None
        self._attempt_open = False
        if on_done is not None:
            on_done(self, operation)


# ============================================================================
# 4. Cluster: relógio, eventos e falhas
# ============================================================================

class SimulationError(Exception):
    """Falha encontrada pela simulação; `report` traz o estado de cada nó."""

    def __init__(self, message: str, report: str = ""):
        super().__init__(message)
        self.message = message
        self.report = report

    def __str__(self) -> str:
        return f"{self.message}\n{self.report}" if self.report else self.message


class SafetyViolation(SimulationError):
    """Uma propriedade de segurança do Raft, ou a linearizabilidade, foi violada."""


class LivenessFailure(SimulationError):
    """O cluster não fez progresso no prazo, depois de todas as falhas cessarem."""


@dataclass
class TraceEvent:
    """Um acontecimento da simulação, para a narração e para --trace."""

    time: float
    source: str          # id do nó, do cliente, ou "rede"
    level: int
    text: str


def node_names(count: int) -> list:
    """Os nomes S1, S2, ... dos servidores, como nas figuras do artigo do Raft."""
    return [f"S{number}" for number in range(1, count + 1)]


class Cluster:
    """Um cluster Raft simulado: nós, rede, relógio, clientes e verificador.

    Toda a aleatoriedade sai de `rng`, um único random.Random criado da
    semente. Cada núcleo recebe um Random próprio derivado dele, e um novo a
    cada vez que o nó volta de uma queda. O relógio salta direto para o
    próximo evento: a próxima entrega de mensagem ou timer na fila, ou o
    próximo prazo de algum núcleo (RaftCore.next_deadline). Empates na fila
    saem na ordem em que foram agendados, então a mesma semente repete a
    execução evento por evento.

    Cada chamada ao núcleo devolve um Ready, executado na ordem que a
    Figura 2 exige (veja `_execute`). Com `check=True`, o SafetyChecker
    confere as propriedades de segurança depois de cada chamada.

    `broken_executor` estraga de propósito o executor, para provar que a
    conferência de linearizabilidade pega o defeito: "stale_reads" serve
    leituras da cópia local sem ReadIndex, e "early_ack" confirma escritas
    antes de elas ficarem comprometidas.
    """

    def __init__(self, nodes: Any = 5, *, seed: Optional[int] = 0,
                 rng: Optional[random.Random] = None, config: Optional[SimConfig] = None,
                 check: bool = True, broken_executor: Optional[str] = None):
        if broken_executor not in (None, "stale_reads", "early_ack"):
            raise ValueError(f"broken_executor inválido: {broken_executor!r}")
        self.config = config or SimConfig()
        self.seed = seed
        self.rng = rng if rng is not None else random.Random(seed)
        self.node_ids = node_names(nodes) if isinstance(nodes, int) else list(nodes)
        if not self.node_ids:
            raise ValueError("o cluster precisa de pelo menos um nó")
        self.nodes = {node_id: SimNode(node_id, [peer for peer in self.node_ids
                                                 if peer != node_id])
                      for node_id in self.node_ids}
        self._node_list = list(self.nodes.values())
        self.network = Network(self.rng, self.config)
        self.broken_executor = broken_executor
        self.now = 0.0
        self.events = 0
        self.stats: collections.Counter = collections.Counter()
        self.history: list = []
        self.clients: dict = {}
        # Funções chamadas com cada TraceEvent (narração, --trace).
        self.listeners: list = []
        self._queue: list = []
        self._sequence = itertools.count()
        # Regras de retenção (veja hold) e as mensagens retidas, em ordem de envio.
        self._hold_rules: list = []
        self.held: list = []
        self._read_ids = itertools.count(1)
        # Ordem total dos pedidos e respostas de clientes (Operation.invoke_stamp).
        self.stamps = itertools.count(1)
        self._current_event: tuple = ("início",)
        self.checker = SafetyChecker(self) if check else None
        for node in self._node_list:
            self._start_node(node)

    # ---- relógio e fila de eventos -----------------------------------------

    def schedule(self, delay: float, function: Callable, *args: Any) -> None:
        """Agenda `function(*args)` para daqui a `delay` segundos simulados."""
        self._schedule_at(self.now + delay, function, *args)

    def _schedule_at(self, when: float, function: Callable, *args: Any) -> None:
        heapq.heappush(self._queue, (when, next(self._sequence), function, args))

    def step(self, until: float = math.inf) -> bool:
        """Processa o próximo evento, se ele acontece até `until`.

        Devolve False, sem mexer no relógio, quando não há evento até lá.
        """
        now = self.now
        tick_node = None
        tick_time = math.inf
        for node in self._node_list:
            core = node.core
            if core is None or node.paused_until > now:
                continue
            deadline = core.next_deadline()
            if deadline < tick_time:
                tick_time, tick_node = deadline, node
        queue = self._queue
        event_time = queue[0][0] if queue else math.inf
        if tick_time < event_time:
            if tick_time > until:
                return False
            self.now = max(now, tick_time)
            self.events += 1
            self._tick(tick_node)
            return True
        if event_time > until or event_time == math.inf:
            return False
        _, _, function, args = heapq.heappop(queue)
        self.now = max(now, event_time)
        self.events += 1
        function(*args)
        return True

    def run_for(self, seconds: float) -> None:
        """Avança o relógio `seconds` segundos, processando tudo o que acontece."""
        end = self.now + seconds
        while self.step(end):
            pass
        self.now = max(self.now, end)

    def run_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Processa eventos até `predicate()` valer ou `timeout` segundos passarem.

        Devolve o valor final de `predicate()`.
        """
        end = self.now + timeout
        while not predicate():
            if not self.step(end):
                self.now = max(self.now, end)
                return predicate()
        return True

    def _tick(self, node: SimNode) -> None:
        core = node.core
        self._current_event = ("tick", node.node_id)
        self._execute(node, core.tick(self.now))
        if node.core is core and node.paused_until <= self.now \
                and core.next_deadline() <= self.now:
            raise self.failure(SimulationError,
                               f"{node.node_id} não avançou o próximo prazo depois de "
                               f"tick(): next_deadline()={core.next_deadline():.6f} não "
                               f"passa do instante atual; a simulação entraria em laço")

    # ---- execução de um Ready ----------------------------------------------

    def _execute(self, node: SimNode, ready: Ready, reply_to: Optional[tuple] = None) -> None:
        """Executa o Ready de um núcleo na ordem da Figura 2.

        1. grava o log e, se mudaram, o termo e o voto (a MemoryStorage guarda
           tudo como depois de um fsync);
        2. só então envia as mensagens e a resposta ao RPC recebido;
        3. aplica as entradas comprometidas e responde aos clientes.
        """
        core = node.core
        checker = self.checker
        # As linhas do núcleo saem primeiro, para que um relato de violação
        # venha depois do que o núcleo acabou de fazer.
        if ready.lines and self.listeners:
            for line in ready.lines:
                self._notify(node.node_id, line.level, line.text)
        if checker is not None:
            checker.before_persist(node, ready)
        persist_ready(node.storage, ready)
        if ready.hard_state_changed:
            node.storage.save_state(core.current_term, core.voted_for)
        node.storage.sync()
        if checker is not None:
            checker.after_persist(node, ready)

        if node.crash_in_next_ready is not None and (
                ready.log_writes or ready.hard_state_changed or ready.messages
                or reply_to is not None):
            # Queda injetada entre o fsync e o fim dos envios: o que foi
            # gravado sobrevive, e só parte das mensagens sai.
            for peer, message in ready.messages[:node.crash_in_next_ready]:
                self._send_rpc(node, peer, message)
            self.crash(node.node_id, "no meio de um Ready, depois de gravar")
            return

        for peer, message in ready.messages:
            self._send_rpc(node, peer, message)
        if reply_to is not None and ready.reply is not None:
            self._send_reply(node, reply_to, ready.reply)

        for entry in ready.committed:
            self._apply(node, entry)
        for read_id, index in ready.reads_ready:
            node.reads_waiting.append((index, read_id))
        if node.reads_waiting:
            self._serve_reads(node)
        for read_id in ready.reads_failed:
            client, request = node.pending_reads.pop(read_id, (None, None))
            if client is not None:
                self._reply_client(node, client, request, "not_leader",
                                   leader_hint=core.leader_id)

    def _apply(self, node: SimNode, entry: LogEntry) -> None:
        if self.checker is not None:
            self.checker.on_apply(node, entry)
        result = node.kv.apply(entry)
        for term, client, request in node.pending_writes.pop(entry.index, ()):
            if term == entry.term:
                self._reply_client(node, client, request, "ok",
                                   output=_operation_output(request.kind, result),
                                   index=entry.index, term=entry.term)
            else:
                self._reply_client(node, client, request, "lost")

    def _serve_reads(self, node: SimNode) -> None:
        waiting = []
        for index, read_id in node.reads_waiting:
            if index > node.kv.last_applied:
                waiting.append((index, read_id))
                continue
            client, request = node.pending_reads.pop(read_id, (None, None))
            if client is not None:
                self._reply_client(node, client, request, "ok",
                                   output=node.kv.get(request.key))
        node.reads_waiting = waiting

    # ---- mensagens entre nós -----------------------------------------------

    def hold(self, predicate: Callable[[str, str, Any], bool]) -> None:
        """Retém as mensagens entre nós para as quais predicate(origem, destino,
        mensagem) é verdadeiro, até release(). Serve para montar atrasos exatos."""
        self._hold_rules.append(predicate)

    def release(self) -> int:
        """Para de reter e entrega agora, na ordem de envio, as mensagens retidas.

        A entrega ainda passa pela partição atual. Devolve quantas eram.
        """
        self._hold_rules.clear()
        held, self.held = self.held, []
        for function, args in held:
            self._schedule_at(self.now, function, *args)
        return len(held)

    def _held(self, source: str, destination: str, message: Any, function: Callable,
              args: tuple) -> bool:
        for rule in self._hold_rules:
            if rule(source, destination, message):
                self.held.append((function, args))
                return True
        return False

    def _send_rpc(self, node: SimNode, peer: str, message: Any) -> None:
        self.stats["mensagens"] += 1
        if self._hold_rules and self._held(node.node_id, peer, message, self._deliver_request,
                                           (node.node_id, node.incarnation, peer, message)):
            return
        delays = self.network.delays(node.node_id, peer, message)
        if not delays:
            self.stats["mensagens perdidas"] += 1
            self._schedule_failure(node.node_id, node.incarnation, peer, message)
            return
        if len(delays) > 1:
            self.stats["mensagens duplicadas"] += 1
        for delay in delays:
            self._schedule_at(self.now + delay, self._deliver_request, node.node_id,
                              node.incarnation, peer, message)

    def _schedule_failure(self, requester: str, incarnation: int, peer: str,
                          request: Any, delay: Optional[float] = None) -> None:
        """Avisa o remetente de que o RPC falhou, como o tempo limite do HTTP."""
        if delay is None:
            delay = self.config.rpc_failure_timeout
        self._schedule_at(self.now + delay, self._deliver_failure, requester, incarnation,
                          peer, request)

    def _deliver_request(self, source: str, source_incarnation: int, destination: str,
                         message: Any) -> None:
        node = self.nodes[destination]
        if node.paused_until > self.now:
            self._schedule_at(node.paused_until, self._deliver_request, source,
                              source_incarnation, destination, message)
            return
        if not self.network.connected(source, destination):
            self.stats["mensagens perdidas"] += 1
            self._schedule_failure(source, source_incarnation, destination, message)
            return
        core = node.core
        if core is None:
            # Conexão recusada: o remetente sabe logo.
            self._schedule_failure(source, source_incarnation, destination, message,
                                   self.rng.uniform(self.network.min_delay,
                                                    self.network.max_delay))
            return
        self._current_event = ("entrega", source, destination, message)
        received = copy_message(message, self.config.wire)
        if isinstance(received, RequestVote):
            ready = core.handle_request_vote(received, self.now)
        else:
            ready = core.handle_append_entries(source, received, self.now)
        self._execute(node, ready, reply_to=(source, source_incarnation, message))

    def _send_reply(self, node: SimNode, reply_to: tuple, reply: Any) -> None:
        requester, incarnation, request = reply_to
        self.stats["mensagens"] += 1
        if self._hold_rules and self._held(node.node_id, requester, reply, self._deliver_reply,
                                           (node.node_id, requester, incarnation, request,
                                            reply)):
            return
        delays = self.network.delays(node.node_id, requester, reply)
        if not delays:
            self.stats["mensagens perdidas"] += 1
            self._schedule_failure(requester, incarnation, node.node_id, request)
            return
        if len(delays) > 1:
            self.stats["mensagens duplicadas"] += 1
        for delay in delays:
            self._schedule_at(self.now + delay, self._deliver_reply, node.node_id,
                              requester, incarnation, request, reply)

    def _deliver_reply(self, replier: str, requester: str, incarnation: int,
                       request: Any, reply: Any) -> None:
        node = self.nodes[requester]
        if node.paused_until > self.now:
            self._schedule_at(node.paused_until, self._deliver_reply, replier, requester,
                              incarnation, request, reply)
            return
        if node.core is None or node.incarnation != incarnation:
            return
        if not self.network.connected(replier, requester):
            self.stats["mensagens perdidas"] += 1
            self._schedule_failure(requester, incarnation, replier, request)
            return
        self._current_event = ("resposta", replier, requester, reply)
        received = copy_message(reply, self.config.wire)
        # O pedido entregue ao núcleo é o objeto original que ele enviou: o
        # líder reconhece o AppendEntries em trânsito pela identidade.
        if isinstance(request, RequestVote):
            ready = node.core.handle_request_vote_reply(replier, request, received, self.now)
        else:
            ready = node.core.handle_append_entries_reply(replier, request, received,
                                                          self.now)
        self._execute(node, ready)

    def _deliver_failure(self, requester: str, incarnation: int, peer: str,
                         request: Any) -> None:
        node = self.nodes[requester]
        if node.paused_until > self.now:
            self._schedule_at(node.paused_until, self._deliver_failure, requester,
                              incarnation, peer, request)
            return
        if node.core is None or node.incarnation != incarnation:
            return
        self._current_event = ("falha de envio", requester, peer, request)
        self._execute(node, node.core.handle_send_failure(peer, request, self.now))

    def inject_message(self, source: str, destination: str, message: Any,
                       delay: float = 0.0) -> None:
        """Entrega a `destination` uma mensagem qualquer, como se `source` a
        tivesse enviado: por exemplo, uma cópia atrasada de um pedido antigo.
        A resposta volta a `source` como resposta a um pedido que ele não tem
        mais em trânsito."""
        node = self.nodes[source]
        self._schedule_at(self.now + delay, self._deliver_request, source,
                          node.incarnation, destination, message)

    # ---- clientes ----------------------------------------------------------

    def client(self, client_id: Optional[str] = None) -> Client:
        """Cria um cliente (ou devolve o que já tem esse nome)."""
        if client_id is None:
            client_id = f"c{len(self.clients) + 1}"
        if client_id not in self.clients:
            self.clients[client_id] = Client(self, client_id)
        return self.clients[client_id]

    def _send_client_request(self, client: Client, node_id: str,
                             request: ClientRequest) -> None:
        if self.listeners:
            description = f"{request.kind} {request.key}"
            if request.kind == "put":
                description += f"={request.value}"
            self._notify(client.client_id, logging.INFO,
                         f"pede {description} a {node_id} (tentativa {request.attempt})")
        for delay in self.network.delays(client.client_id, node_id, request,
                                         between_nodes=False):
            self._schedule_at(self.now + delay, self._deliver_client_request, client,
                              node_id, request)

    def _deliver_client_request(self, client: Client, node_id: str,
                                request: ClientRequest) -> None:
        node = self.nodes[node_id]
        if node.paused_until > self.now:
            self._schedule_at(node.paused_until, self._deliver_client_request, client,
                              node_id, request)
            return
        core = node.core
        if core is None:
            self._reply_client(node, client, request, "unavailable")
            return
        self._current_event = ("cliente", client.client_id, node_id, request)
        if request.kind == "get":
            if self.broken_executor == "stale_reads":
                self._reply_client(node, client, request, "ok",
                                   output=node.kv.get(request.key))
                return
            read_id = next(self._read_ids)
            node.pending_reads[read_id] = (client, request)
            self._execute(node, core.request_read(read_id, self.now))
            return
        command = {"op": request.kind, "key": request.key,
                   "client_id": request.client_id, "sequence": request.sequence}
        if request.kind == "put":
            command["value"] = request.value
        ready = core.propose(command, self.now)
        if ready.proposal is None:
            self._execute(node, ready)
            if node.core is core:
                self._reply_client(node, client, request, "not_leader",
                                   leader_hint=core.leader_id)
            return
        index, term = ready.proposal
        # Registrado antes de executar: num cluster de um nó só, a entrada já
        # sai comprometida neste mesmo Ready.
        node.pending_writes.setdefault(index, []).append((term, client, request))
        self._execute(node, ready)
        if self.broken_executor == "early_ack" and node.core is core:
            self._reply_client(node, client, request, "ok", index=index, term=term)

    def _reply_client(self, node: SimNode, client: Client, request: ClientRequest,
                      status: str, *, output: Any = None, leader_hint: Optional[str] = None,
                      index: int = 0, term: int = 0) -> None:
        response = ClientResponse(request.op_id, request.attempt, status, node.node_id,
                                  output, leader_hint, index, term)
        if self.listeners:
            self._notify(node.node_id, logging.INFO,
                         f"responde a {client.client_id}: "
                         f"{_describe_response(request, response)}")
        for delay in self.network.delays(node.node_id, client.client_id, response,
                                         between_nodes=False):
            self._schedule_at(self.now + delay, client.on_response, response)

    def propose(self, node_id: str, command: dict) -> Optional[tuple]:
        """Entrega `command` direto ao núcleo de `node_id`, sem cliente.

        Devolve (índice, termo) da entrada nova, ou None se o nó não é líder.
        """
        node = self.nodes[node_id]
        if node.core is None:
            return None
        self._current_event = ("proposta", node_id, command)
        ready = node.core.propose(command, self.now)
        self._execute(node, ready)
        return ready.proposal

    # ---- falhas ------------------------------------------------------------

    def crash(self, node_id: str, cause: str = "") -> None:
        """Derruba o nó: o estado volátil some; termo, voto e log ficam no disco."""
        node = self.nodes[node_id]
        if node.core is None:
            return
        node.core = None
        node.kv = None
        node.incarnation += 1
        node.paused_until = 0.0
        node.crash_in_next_ready = None
        node.pending_writes.clear()
        node.pending_reads.clear()
        node.reads_waiting = []
        self._notify(node_id, logging.WARNING,
                     f"caiu{f' ({cause})' if cause else ''}: o estado volátil se perdeu; "
                     f"termo, voto e log continuam no disco")

    def crash_in_next_ready(self, node_id: str, messages_sent: int = 0) -> None:
        """Faz o nó cair no próximo Ready que grave ou envie algo, depois de
        gravar e de enviar só as primeiras `messages_sent` mensagens."""
        node = self.nodes[node_id]
        if node.core is not None:
            node.crash_in_next_ready = messages_sent

    def restart(self, node_id: str) -> None:
        """Religa o nó a partir do que está no seu disco."""
        node = self.nodes[node_id]
        if node.core is not None:
            return
        self._start_node(node)
        core = node.core
        self._notify(node_id, logging.WARNING,
                     f"voltou com o que estava no disco: termo {core.current_term}, "
                     f"voto {core.voted_for or '-'}, {len(core.log)} entrada(s) no log")

    def _start_node(self, node: SimNode) -> None:
        term, voted_for, entries = node.storage.open()
        config = self.config
        node.core = RaftCore(node.node_id, node.peers,
                             rng=random.Random(self.rng.getrandbits(64)), now=self.now,
                             election_timeout_min=config.election_timeout_min,
                             election_timeout_max=config.election_timeout_max,
                             heartbeat_interval=config.heartbeat_interval,
                             current_term=term, voted_for=voted_for, log=entries,
                             check_quorum=config.check_quorum)
        node.kv = KeyValueStore()
        if self.checker is not None:
            self.checker.on_start(node)

    def pause(self, node_id: str, seconds: float) -> None:
        """Congela o nó por `seconds`: nada do que chega a ele é tratado até lá."""
        node = self.nodes[node_id]
        if node.core is None:
            return
        node.paused_until = max(node.paused_until, self.now + seconds)
        # Um evento vazio acorda a simulação no fim da pausa.
        self._schedule_at(node.paused_until, _nothing)
        self._notify(node_id, logging.WARNING, f"pausado por {seconds * 1000:.0f} ms")

    def partition(self, *groups: list) -> None:
        """Parte a rede: só nós do mesmo grupo se falam; quem não está em
        nenhum grupo fica isolado."""
        self.network.partition([list(group) for group in groups])
        described = " | ".join("{" + ", ".join(group) + "}" for group in groups)
        self._notify("rede", logging.WARNING, f"partição: {described}")

    def isolate(self, node_id: str) -> None:
        others = [other for other in self.node_ids if other != node_id]
        self.partition([node_id], others)

    def cut_link(self, source: str, destination: str) -> None:
        """Corta o enlace num sentido só: `source` deixa de alcançar `destination`."""
        self.network.blocked_links.add((source, destination))
        self._notify("rede", logging.WARNING, f"enlace {source} -> {destination} cortado")

    def heal(self) -> None:
        """Desfaz partições e enlaces cortados."""
        self.network.heal()
        self._notify("rede", logging.WARNING, "a rede voltou ao normal")

    def campaign(self, node_id: str) -> None:
        """Antecipa o timeout de eleição do nó: ele vira candidato agora."""
        node = self.nodes[node_id]
        if node.core is None or node.core.role == Role.LEADER:
            return
        node.core.election_deadline = self.now
        self._tick(node)

    # ---- consultas ---------------------------------------------------------

    def core(self, node_id: str) -> Optional[RaftCore]:
        return self.nodes[node_id].core

    def leaders(self) -> list:
        return [node.node_id for node in self._node_list
                if node.core is not None and node.core.role == Role.LEADER]

    def leader(self) -> Optional[str]:
        """O líder de maior termo entre os nós no ar, ou None."""
        best = None
        for node in self._node_list:
            core = node.core
            if core is not None and core.role == Role.LEADER and (
                    best is None or core.current_term > best.core.current_term):
                best = node
        return best.node_id if best is not None else None

    def in_sync(self, node_ids: Optional[list] = None) -> bool:
        """Diz se há líder e se os nós dados (padrão: todos) estão no ar, com o
        log igual ao do líder e tudo comprometido e aplicado."""
        leader_id = self.leader()
        if leader_id is None:
            return False
        leader = self.nodes[leader_id].core
        last_index, last_term = leader.last_log_index, leader.last_log_term
        if leader.commit_index != last_index or last_term != leader.current_term:
            return False
        for node_id in node_ids if node_ids is not None else self.node_ids:
            node = self.nodes[node_id]
            core = node.core
            if core is None or node.paused_until > self.now:
                return False
            if core.current_term != leader.current_term or core.last_log_index != last_index \
                    or core.last_log_term != last_term or core.commit_index != last_index \
                    or node.kv.last_applied != last_index:
                return False
        return True

    def converged(self) -> bool:
        """Todos os nós no ar, em dia com um único líder, com o mesmo armazenamento."""
        if not self.in_sync():
            return False
        if len(self.leaders()) != 1:
            return False
        first = self._node_list[0].kv.data
        return all(node.kv.data == first for node in self._node_list)

    # ---- relatos -----------------------------------------------------------

    def _notify(self, source: str, level: int, text: str) -> None:
        if self.listeners:
            event = TraceEvent(self.now, source, level, text)
            for listener in self.listeners:
                listener(event)

    def describe_current_event(self) -> str:
        kind, *details = self._current_event
        if kind == "tick":
            return f"tick de {details[0]}"
        if kind in ("entrega", "resposta", "falha de envio"):
            source, destination, message = details
            text = f"{kind} {source} -> {destination}: {message!r}"
        elif kind == "cliente":
            client_id, node_id, request = details
            text = f"pedido de {client_id} a {node_id}: {request!r}"
        else:
            text = " ".join(str(detail) for detail in [kind, *details])
        return text if len(text) <= 400 else text[:400] + "..."

    def failure(self, kind: type, message: str) -> SimulationError:
        """Monta o erro com a semente, o evento atual e o estado de cada nó."""
        lines = [f"semente: {self.seed}   instante: {self.now:.6f} s   "
                 f"evento nº {self.events}: {self.describe_current_event()}",
                 "estado dos nós:"]
        lines.extend("  " + line for line in format_cluster(self, max_entries=30))
        return kind(message, "\n".join(lines))


def _nothing() -> None:
    """Evento vazio: só acorda o relógio num instante marcado."""


def _describe_response(request: ClientRequest, response: ClientResponse) -> str:
    if response.status == "not_leader":
        hint = response.leader_hint
        return f"não sou o líder{f'; o líder é {hint}' if hint else ''}"
    if response.status == "lost":
        return ("a entrada do pedido foi substituída por outra numa troca de líder; "
                "tente de novo")
    if response.status == "unavailable":
        return "fora do ar"
    if request.kind == "get":
        found, value = response.output
        return f"{request.key} = {value}" if found else f"{request.key} não existe"
    if request.kind == "delete":
        return f"delete {request.key} comprometido no índice {response.index} " \
               f"(termo {response.term})"
    return f"{request.key}={request.value} comprometido no índice {response.index} " \
           f"(termo {response.term})"


def describe_command(command: Optional[dict]) -> str:
    """Mostra um comando do log de forma compacta: x=1, del x, ou · (entrada vazia)."""
    if command is None:
        return "·"
    operation = command.get("op")
    if operation == "put":
        return f"{command.get('key')}={command.get('value')}"
    if operation == "delete":
        return f"del {command.get('key')}"
    return "?"


def format_log(entries: list, commit_index: Optional[int], max_entries: int) -> str:
    """Mostra um log como "termo:comando"; o que vem depois de | ainda não
    está comprometido. Logs longos mostram só o fim."""
    if not entries:
        return "(vazio)"
    visible = entries[-max_entries:]
    parts = []
    if len(entries) > len(visible):
        parts.append(f"…({len(entries) - len(visible)} antes)")
    if commit_index is not None and visible[0].index > commit_index + 1:
        parts.append("|")
    for entry in visible:
        if commit_index is not None and entry.index == commit_index + 1:
            parts.append("|")
        parts.append(f"{entry.term}:{describe_command(entry.command)}")
    return " ".join(parts)


def format_cluster(cluster: Cluster, max_entries: int = 12) -> list:
    """Uma linha por nó: papel, termo, voto, commit e log."""
    paused = False
    lines = [f"{'nó':<4} {'papel':<11} {'termo':>5}  {'voto':<4} {'commit':>6}  "
             f"log (termo:comando)"]
    for node in cluster.nodes.values():
        core = node.core
        if core is None:
            storage = node.storage
            lines.append(f"{node.node_id:<4} {'fora do ar':<11} {storage.current_term:>5}  "
                         f"{storage.voted_for or '-':<4} {'-':>6}  "
                         f"{format_log(storage.entries, None, max_entries)}")
            continue
        role = ROLE_NAMES_PT[core.role]
        if node.paused_until > cluster.now:
            role += "*"
            paused = True
        lines.append(f"{node.node_id:<4} {role:<11} {core.current_term:>5}  "
                     f"{core.voted_for or '-':<4} {core.commit_index:>6}  "
                     f"{format_log(core.log, core.commit_index, max_entries)}")
    if paused:
        lines.append("(* = nó pausado)")
    return lines


# ============================================================================
# 5. Verificação de segurança
# ============================================================================

class SafetyChecker:
    """Confere a segurança do Raft depois de cada chamada a um núcleo.

    As cinco propriedades da Figura 3 do artigo:

      - Election Safety: no máximo um líder por termo.
      - Leader Append-Only: um líder nunca apaga nem sobrescreve entradas do
        próprio log; só acrescenta.
      - Log Matching: se dois logs têm uma entrada com o mesmo índice e termo,
        eles são iguais até esse índice. Basta conferir que cada par (índice,
        termo) tem sempre o mesmo comando e o mesmo termo no índice anterior.
      - Leader Completeness: uma entrada comprometida num termo está no log
        dos líderes de todos os termos maiores. (Um líder de termo menor ainda
        pode ser eleito depois, com votos atrasados do termo dele, e não
        precisa tê-la.)
      - State Machine Safety: dois nós nunca aplicam comandos diferentes no
        mesmo índice.

    E os invariantes de cada nó: current_term nunca diminui (nem numa queda);
    voted_for não muda dentro de um termo; last_applied <= commit_index <=
    último índice do log; commit_index não recua enquanto o nó está no ar; o
    termo, o voto e o log no "disco" são iguais aos da memória depois de cada
    Ready gravado (um Ready que esquece hard_state_changed aparece aqui).

    "Comprometida" segue a definição do artigo, sem depender do que algum nó
    acha. Uma entrada do termo T fica comprometida quando a maioria dos nós a
    guarda depois de recebê-la no termo T, isto é, do líder que a criou
    (§5.3). As entradas antes dela no mesmo log ficam comprometidas junto
    (§5.4.2). Uma entrada de termo antigo copiada para a maioria por um líder
    mais novo não conta: é o caso da Figura 8. Aplicar uma entrada que não está
    comprometida nesse sentido é uma violação, mesmo que nenhum nó discorde.
    """

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.majority = len(cluster.node_ids) // 2 + 1
        self.checks = 0
        self.leader_of_term: dict = {}
        self.last_term: dict = {}
        self.last_vote: dict = {}
        self.last_commit: dict = {}
        # Nó -> (termo, tamanho do log, última entrada) enquanto ele é líder.
        self.leader_log: dict = {}
        # (índice, termo) -> (comando, termo da entrada anterior): Log Matching.
        self.entry_info: dict = {}
        # (índice, termo) -> quantos nós guardam essa entrada recebida no termo dela.
        self.own_term_copies: dict = {}
        self.counted: dict = {node_id: set() for node_id in cluster.node_ids}
        # committed[i - 1] = (termo, comando, termo em que ficou comprometida)
        # da entrada comprometida no índice i.
        self.committed: list = []
        self._newly_committed: list = []
        # applied[i - 1] = (termo, comando) aplicado no índice i pelo primeiro nó.
        self.applied: list = []

    def _violation(self, text: str) -> SafetyViolation:
        return self.cluster.failure(SafetyViolation, f"violação de segurança: {text}")

    # ---- ganchos chamados pelo Cluster -------------------------------------

    def on_start(self, node: SimNode) -> None:
        core = node.core
        node_id = node.node_id
        previous = self.last_term.get(node_id, 0)
        if core.current_term < previous:
            raise self._violation(
                f"{node_id} voltou de uma queda no termo {core.current_term}, mas já "
                f"estava no termo {previous}: o termo persistido regrediu")
        if core.current_term == previous and self.last_vote.get(node_id) is not None \
                and core.voted_for != self.last_vote[node_id]:
            raise self._violation(
                f"{node_id} voltou de uma queda com voto {core.voted_for!r} no termo "
                f"{previous}, mas tinha votado em {self.last_vote[node_id]!r}")
        self.last_term[node_id] = core.current_term
        self.last_vote[node_id] = core.voted_for
        self.last_commit[node_id] = core.commit_index
        self.leader_log.pop(node_id, None)

    def before_persist(self, node: SimNode, ready: Ready) -> None:
        """Conta as cópias que entram e saem do log, antes de o disco mudar."""
        if not ready.log_writes:
            return
        node_id = node.node_id
        term = node.core.current_term
        if any(operation == "truncate" for operation, _ in ready.log_writes):
            # Refaz as operações numa cópia do log gravado, para saber quais
            # entradas cada corte apaga.
            entries = list(node.storage.entries)
            for operation, argument in ready.log_writes:
                if operation == "truncate":
                    position = max(0, argument - 1)
                    for entry in entries[position:]:
                        self._remove_copy(node_id, entry, term)
                    del entries[position:]
                else:
                    for entry in argument:
                        self._add_copy(node_id, entry, term)
                    entries.extend(argument)
        else:
            for _, argument in ready.log_writes:
                for entry in argument:
                    self._add_copy(node_id, entry, term)

    def _add_copy(self, node_id: str, entry: LogEntry, term: int) -> None:
        if entry.term != term:
            return
        key = (entry.index, entry.term)
        counted = self.counted[node_id]
        if key in counted:
            return
        counted.add(key)
        copies = self.own_term_copies.get(key, 0) + 1
        self.own_term_copies[key] = copies
        if copies == self.majority:
            self._newly_committed.append((node_id, entry))

    def _remove_copy(self, node_id: str, entry: LogEntry, term: int) -> None:
        """Desconta uma cópia apagada por `node_id`, que está no termo `term`.

        Um nó num termo menor que o termo em que a entrada ficou comprometida
        ainda pode apagá-la: ele obedece a um líder antigo, que foi eleito
        antes do commit e não a tem. Isso não ameaça nada, porque o nó nunca
        aplicou a entrada e vai recebê-la de novo do líder atual. Num termo
        igual ou maior, todo líder tem a entrada, e apagá-la é uma violação.
        """
        index = entry.index
        if index <= len(self.committed):
            committed_term, _, commit_term = self.committed[index - 1]
            if committed_term == entry.term and term >= commit_term:
                raise self._violation(
                    f"{node_id} apagou, no termo {term}, a entrada de índice {index} "
                    f"(termo {entry.term}, {describe_command(entry.command)}), "
                    f"comprometida no termo {commit_term}")
        key = (index, entry.term)
        counted = self.counted[node_id]
        if key in counted:
            counted.discard(key)
            self.own_term_copies[key] -= 1

    def after_persist(self, node: SimNode, ready: Ready) -> None:
        """Confere o nó que acabou de ser chamado, com o Ready já gravado."""
        self.checks += 1
        core = node.core
        node_id = node.node_id
        term = core.current_term

        # Invariantes do nó.
        previous_term = self.last_term.get(node_id, 0)
        if term < previous_term:
            raise self._violation(f"current_term de {node_id} diminuiu de "
                                  f"{previous_term} para {term}")
        previous_vote = self.last_vote.get(node_id)
        if term == previous_term and previous_vote is not None \
                and core.voted_for != previous_vote:
            raise self._violation(f"{node_id} mudou voted_for de {previous_vote!r} para "
                                  f"{core.voted_for!r} dentro do termo {term}")
        self.last_term[node_id] = term
        self.last_vote[node_id] = core.voted_for
        storage = node.storage
        if storage.current_term != term or storage.voted_for != core.voted_for:
            raise self._violation(
                f"{node_id} tem termo {term} e voto {core.voted_for!r} na memória, mas "
                f"{storage.current_term} e {storage.voted_for!r} no disco depois do "
                f"Ready (faltou hard_state_changed)")
        log = core.log
        if len(storage.entries) != len(log) or (log and storage.entries[-1] is not log[-1]):
            raise self._violation(
                f"o log de {node_id} no disco ({len(storage.entries)} entradas) difere do "
                f"log na memória ({len(log)} entradas) depois do Ready")
        last_index = core.last_log_index
        if core.commit_index > last_index:
            raise self._violation(f"{node_id} tem commit_index {core.commit_index} além "
                                  f"do fim do log ({last_index})")
        if core.last_applied > core.commit_index:
            raise self._violation(f"{node_id} tem last_applied {core.last_applied} maior "
                                  f"que commit_index {core.commit_index}")
        if core.commit_index < self.last_commit.get(node_id, 0):
            raise self._violation(f"commit_index de {node_id} recuou de "
                                  f"{self.last_commit[node_id]} para {core.commit_index}")
        self.last_commit[node_id] = core.commit_index

        # Log Matching: cada (índice, termo) novo tem sempre o mesmo comando e
        # o mesmo termo no índice anterior.
        for operation, argument in ready.log_writes:
            if operation == "append":
                for entry in argument:
                    self._check_log_matching(node_id, core, entry)

        # Entradas que acabaram de ficar comprometidas, e as anteriores a elas.
        if self._newly_committed:
            for holder, entry in self._newly_committed:
                self._mark_committed(holder, entry)
            self._newly_committed = []

        # Election Safety, Leader Append-Only e Leader Completeness.
        if core.role == Role.LEADER:
            owner = self.leader_of_term.setdefault(term, node_id)
            if owner != node_id:
                raise self._violation(f"dois líderes no termo {term}: {owner} e {node_id}")
            record = self.leader_log.get(node_id)
            if record is None or record[0] != term:
                self._check_leader_completeness(node_id, core)
            else:
                _, length, last_entry = record
                if any(operation == "truncate" for operation, _ in ready.log_writes) \
                        or len(log) < length or (length and log[length - 1] is not last_entry):
                    raise self._violation(f"o líder {node_id} apagou ou sobrescreveu "
                                          f"entradas do próprio log no termo {term}")
            self.leader_log[node_id] = (term, len(log), log[-1] if log else None)
        else:
            self.leader_log.pop(node_id, None)

    def _check_log_matching(self, node_id: str, core: RaftCore, entry: LogEntry) -> None:
        if core.term_at(entry.index) != entry.term:
            return  # já saiu do log; a comparação com o disco cobre esse caso
        key = (entry.index, entry.term)
        previous_term = core.term_at(entry.index - 1)
        known = self.entry_info.get(key)
        if known is None:
            self.entry_info[key] = (entry.command, previous_term)
            return
        command, known_previous_term = known
        if command != entry.command or previous_term != known_previous_term:
            raise self._violation(
                f"Log Matching: {node_id} tem no índice {entry.index}, termo {entry.term}, "
                f"o comando {entry.command!r} depois de uma entrada de termo "
                f"{previous_term}; outro nó tem {command!r} depois de termo "
                f"{known_previous_term}")

    def _mark_committed(self, holder: str, entry: LogEntry) -> None:
        """Marca como comprometidas a entrada e as anteriores a ela no log de `holder`."""
        committed = self.committed
        index = entry.index
        if index <= len(committed):
            if committed[index - 1][0] != entry.term:
                raise self._violation(
                    f"duas entradas comprometidas no índice {index}: termo "
                    f"{committed[index - 1][0]} e termo {entry.term}")
            return
        core = self.cluster.nodes[holder].core
        if committed and core.term_at(len(committed)) != committed[-1][0]:
            raise self._violation(
                f"{holder} completou a maioria da entrada {index} (termo {entry.term}), "
                f"mas o seu log não contém a entrada comprometida {len(committed)}")
        for position in range(len(committed) + 1, index + 1):
            stored = core.entry_at(position)
            committed.append((stored.term, stored.command, entry.term))

    def _check_leader_completeness(self, node_id: str, core: RaftCore) -> None:
        for index, (term, _, commit_term) in enumerate(self.committed, start=1):
            if commit_term >= core.current_term:
                break  # daqui em diante, comprometidas no termo do líder ou depois
            if core.term_at(index) != term:
                raise self._violation(
                    f"Leader Completeness: {node_id} virou líder do termo "
                    f"{core.current_term} sem a entrada comprometida de índice {index} "
                    f"(termo {term}); o seu log tem termo {core.term_at(index)} ali")

    def on_apply(self, node: SimNode, entry: LogEntry) -> None:
        node_id = node.node_id
        index = entry.index
        if index != node.kv.last_applied + 1:
            raise self._violation(f"{node_id} aplicou o índice {index} depois do "
                                  f"{node.kv.last_applied}, fora de ordem")
        if index > len(self.committed) or self.committed[index - 1][0] != entry.term \
                or self.committed[index - 1][1] != entry.command:
            raise self._violation(
                f"{node_id} aplicou a entrada de índice {index} (termo {entry.term}, "
                f"{describe_command(entry.command)}), que não está comprometida: nenhuma "
                f"maioria a guardou no termo dela, nem guardou uma entrada posterior do "
                f"mesmo log no termo desta (regra de commit do §5.4.2)")
        applied = self.applied
        if index <= len(applied):
            if applied[index - 1] != (entry.term, entry.command):
                term, command = applied[index - 1]
                raise self._violation(
                    f"State Machine Safety: {node_id} aplicou "
                    f"{describe_command(entry.command)} (termo {entry.term}) no índice "
                    f"{index}, onde outro nó aplicou {describe_command(command)} "
                    f"(termo {term})")
        else:
            applied.append((entry.term, entry.command))

    def check_final(self) -> None:
        """Conferência completa no fim de uma execução: disco igual à memória e
        Log Matching entre todos os pares de nós, entrada por entrada."""
        logs = {}
        for node_id, node in self.cluster.nodes.items():
            stored = node.storage.entries
            if node.core is not None:
                memory = node.core.log
                if len(stored) != len(memory) or any(
                        a is not b for a, b in zip(stored, memory)):
                    raise self._violation(f"o log de {node_id} no disco difere do log "
                                          f"na memória")
            logs[node_id] = stored
        names = list(logs)
        for position, first in enumerate(names):
            for second in names[position + 1:]:
                self._check_pair(first, logs[first], second, logs[second])

    def _check_pair(self, first: str, log_a: list, second: str, log_b: list) -> None:
        common = min(len(log_a), len(log_b))
        last_match = 0
        for position in range(common - 1, -1, -1):
            if log_a[position].term == log_b[position].term:
                last_match = position + 1
                break
        for position in range(last_match):
            a, b = log_a[position], log_b[position]
            if a.term != b.term or a.command != b.command:
                raise self._violation(
                    f"Log Matching: {first} e {second} têm o mesmo termo no índice "
                    f"{last_match}, mas diferem no índice {position + 1}")


# ============================================================================
# 6. Linearizabilidade
# ============================================================================
#
# Um histórico é linearizável se existe uma ordem total das operações com
# duas propriedades. Ela respeita o tempo real: se A terminou antes de B
# começar, A vem antes. E, executadas uma a uma nessa ordem num armazenamento
# chave-valor comum, as operações dão os resultados que os clientes viram.
# Cada chave é um objeto independente, então cada uma é conferida sozinha.
#
# A busca monta essa ordem por tentativa e erro. A cada passo, ela escolhe
# como próxima qualquer operação pendente que começou antes de a primeira
# pendente terminar. Ela nunca visita duas vezes o mesmo par (conjunto de
# operações já ordenadas, valor da chave). Uma escrita de resultado
# desconhecido não termina nunca: ela pode entrar em qualquer ponto depois de
# começar, ou em nenhum (o que equivale a entrar depois de todas as outras).


class _Absent:
    """Marca de chave ausente no modelo da conferência."""

    def __repr__(self) -> str:
        return "ausente"


ABSENT = _Absent()

# Limite de estados visitados por chave; acima disso a conferência desiste e
# diz que o resultado é inconclusivo, em vez de rodar sem fim.
MAX_LINEARIZABILITY_STATES = 1_000_000


@dataclass
class LinearizabilityResult:
    ok: bool
    inconclusive: bool = False
    key: Optional[str] = None
    message: str = ""
    operations: int = 0
    states: int = 0


def _freeze(value: Any) -> Any:
    """Torna um valor JSON utilizável como chave de dicionário."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def _model_step(state: Any, operation: Operation) -> tuple:
    """Executa `operation` no valor `state`; devolve (resultado confere, novo valor)."""
    kind = operation.kind
    if kind == "put":
        return True, _freeze(operation.value)
    if kind == "delete":
        if operation.status == "ok" and operation.output != (state is not ABSENT):
            return False, state
        return True, ABSENT
    found, value = operation.output
    if found:
        return state is not ABSENT and state == _freeze(value), state
    return state is ABSENT, state


def check_linearizability(history: list,
                          max_states: int = MAX_LINEARIZABILITY_STATES
                          ) -> LinearizabilityResult:
    """Confere se o histórico de operações é linearizável, chave por chave.

    Entram as operações com resposta ("ok") e as escritas de resultado
    desconhecido ("unknown"); leituras sem resposta não afetam nada e ficam de fora.
    """
    by_key: dict = {}
    for operation in history:
        if operation.status == "ok" or (operation.status == "unknown"
                                        and operation.kind != "get"):
            by_key.setdefault(operation.key, []).append(operation)
    total_states = 0
    total_operations = 0
    for key in sorted(by_key, key=str):
        result = _check_key(key, by_key[key], max_states)
        total_states += result.states
        total_operations += result.operations
        if not result.ok:
            result.states = total_states
            return result
    return LinearizabilityResult(True, operations=total_operations, states=total_states)


def _check_key(key: str, operations: list, max_states: int) -> LinearizabilityResult:
    operations = sorted(operations, key=lambda operation: (operation.invoke,
                                                           operation.invoke_stamp))
    count = len(operations)
    # Instantes com desempate: (tempo, ordem do evento).
    responses = [(operation.response, operation.response_stamp)
                 if operation.status == "ok" else (math.inf, 0)
                 for operation in operations]
    invokes = [(operation.invoke, operation.invoke_stamp) for operation in operations]
    # Bit i de `required`: a operação i foi confirmada e precisa entrar na ordem.
    required = int("".join("1" if operation.status == "ok" else "0"
                           for operation in reversed(operations)) or "0", 2)
    # Escritas de resultado desconhecido podem ficar fora da ordem para sempre.
    # Elas são candidatas à parte, para não prender as varreduras no começo.
    unknown_positions = [position for position, operation in enumerate(operations)
                         if operation.status != "ok"]
    unknown = ((1 << count) - 1) & ~required

    def lowest_open(mask: int) -> int:
        """Devolve a posição da primeira operação confirmada fora da ordem."""
        placed = mask | unknown
        return ((placed + 1) & ~placed).bit_length() - 1

    # Um estado da busca é (operações já na ordem, estado do modelo). A máscara
    # é guardada a partir de lowest_open, para que cada estado ocupe o tamanho
    # da janela de operações concorrentes, não o do histórico.
    def pack(mask: int, state: Any) -> tuple:
        base = lowest_open(mask)
        return base, mask >> base, mask & unknown & ((1 << base) - 1), state

    def unpack(packed: tuple) -> tuple:
        base, window, unknown_below, state = packed
        return (window << base) | (required & ((1 << base) - 1)) | unknown_below, state

    seen: set = set()
    best_mask = 0
    best_placed = 0
    stack = [pack(0, ABSENT)]
    while stack:
        packed = stack.pop()
        if packed in seen:
            continue
        mask, state = unpack(packed)
        if mask & required == required:
            return LinearizabilityResult(True, key=key, operations=count, states=len(seen))
        seen.add(packed)
        if len(seen) > max_states:
            return LinearizabilityResult(
                False, inconclusive=True, key=key, operations=count, states=len(seen),
                message=f"conferência da chave {key!r} inconclusiva: passou de "
                        f"{max_states} estados")
        placed_count = (mask & required).bit_count()
        if placed_count > best_placed:
            best_mask, best_placed = mask, placed_count
        # As varreduras começam na primeira operação confirmada fora da ordem e
        # param na primeira iniciada depois do horizonte: as operações estão em
        # ordem de início, e nenhuma termina antes de começar.
        lowest = packed[0]
        horizon = (math.inf, 0)
        for position in range(lowest, count):
            if invokes[position] > horizon:
                break
            if not mask >> position & 1 and responses[position] < horizon:
                horizon = responses[position]
        # Empilhadas ao contrário, as operações confirmadas saem antes das de
        # resultado desconhecido: quando o histórico é linearizável, a busca
        # quase sempre o mostra sem precisar encaixar as desconhecidas.
        candidates = []
        for position in unknown_positions:
            if position >= lowest:
                break
            if not mask >> position & 1:
                matches, new_state = _model_step(state, operations[position])
                if matches:
                    candidates.append((True, mask | 1 << position, new_state))
        for position in range(lowest, count):
            if invokes[position] > horizon:
                break
            if mask >> position & 1:
                continue
            matches, new_state = _model_step(state, operations[position])
            if matches:
                candidates.append((operations[position].status != "ok",
                                   mask | 1 << position, new_state))
        candidates.sort(key=lambda candidate: candidate[0], reverse=True)
        for _, new_mask, new_state in candidates:
            stack.append(pack(new_mask, new_state))
    pending = [operation for position, operation in enumerate(operations)
               if not best_mask >> position & 1]
    lines = [f"o histórico da chave {key!r} não é linearizável: a busca ordenou no "
             f"máximo {best_placed} das "
             f"{required.bit_count()} operações confirmadas, e estas ficaram de fora "
             f"da ordem mais longa:"]
    lines.extend("  " + operation.describe() for operation in pending[:40])
    if len(pending) > 40:
        lines.append(f"  ... e mais {len(pending) - 40}")
    return LinearizabilityResult(False, key=key, message="\n".join(lines),
                                 operations=count, states=len(seen))


# ============================================================================
# 7. Cronogramas aleatórios
# ============================================================================
#
# Um cronograma aleatório sorteia, a partir de uma semente:
#   - o tamanho do cluster, de 1 a 5 nós;
#   - a rede: latência, perdas e duplicações de fundo, e se as mensagens
#     passam pelo JSON do nó real;
#   - o máximo de entradas por AppendEntries (o normal, ou de 1 a 3);
#   - de 1 a 3 clientes sobre 1 a 3 chaves;
#   - uma sequência de falhas durante 2 a 6 segundos.
# Depois as falhas
# cessam: a rede se recompõe, os nós caídos voltam, os clientes terminam o que
# estavam fazendo, e o cluster precisa convergir (um líder, todos os logs e
# armazenamentos iguais) em até 20 s. Então vêm a conferência final dos logs e
# a de linearizabilidade do histórico dos clientes.

# Tipos de falha e o peso de cada um no sorteio.
FAULT_WEIGHTS = {
    "queda": 4,
    "queda no meio de um Ready": 2,
    "queda de todos os nós": 1,
    "partição": 3,
    "enlace cortado": 2,
    "perda de mensagens": 2,
    "duplicação de mensagens": 2,
    "atraso de mensagens": 2,
    "pausa": 2,
}

CONVERGENCE_TIMEOUT = 20.0


@contextlib.contextmanager
def entries_per_append(limit: Optional[int]):
    """Limita as entradas por AppendEntries a `limit` enquanto o bloco roda.

    Com o limite normal (centenas de entradas), um líder novo manda as
    entradas antigas junto com a entrada vazia do próprio termo. Então o caso
    da Figura 8 (entradas antigas na maioria, sem nenhuma do termo atual) não
    apareceu em milhares de cronogramas. Com lotes de 1 a 3 entradas, ele
    aparece com frequência.
    """
    # NOTE: o núcleo lê a constante do módulo a cada envio. Por isso a troca
    # vale para todos os núcleos deste processo enquanto o bloco roda.
    previous = raft_distribuido.MAX_ENTRIES_PER_APPEND
    if limit is not None:
        raft_distribuido.MAX_ENTRIES_PER_APPEND = limit
    try:
        yield
    finally:
        raft_distribuido.MAX_ENTRIES_PER_APPEND = previous


class FaultInjector:
    """Sorteia falhas em intervalos aleatórios e desfaz cada uma depois de um tempo.

    As falhas se sobrepõem: uma partição pode começar com um nó caído e a rede
    perdendo mensagens. Cada falha sorteia a própria duração.
    """

    def __init__(self, cluster: Cluster, rng: random.Random, mean_interval: float,
                 weights: Optional[dict] = None):
        self.cluster = cluster
        self.rng = rng
        self.mean_interval = mean_interval
        # Tipo de falha -> peso no sorteio (padrão: FAULT_WEIGHTS).
        self.weights = dict(weights if weights is not None else FAULT_WEIGHTS)
        self.faults: collections.Counter = collections.Counter()
        network = cluster.network
        self._base = (network.drop_rate, network.duplicate_rate, network.max_delay)
        # Cada falha de rede guarda a sua geração; só a mais recente se desfaz.
        self._generation: collections.Counter = collections.Counter()
        self._until = 0.0
        self._active = False
        self._actions = {
            "queda": self._crash,
            "queda no meio de um Ready": self._crash_mid_ready,
            "queda de todos os nós": self._crash_all,
            "partição": self._partition,
            "enlace cortado": self._cut_link,
            "perda de mensagens": self._loss,
            "duplicação de mensagens": self._duplication,
            "atraso de mensagens": self._delay,
            "pausa": self._pause,
        }

    def start(self, until: float) -> None:
        self._until = until
        self._active = True
        self._schedule_next()

    def _schedule_next(self) -> None:
        delay = self.rng.expovariate(1 / self.mean_interval)
        if self.cluster.now + delay < self._until:
            self.cluster.schedule(delay, self._inject)

    def _inject(self) -> None:
        if not self._active:
            return
        kind = self.rng.choices(list(self.weights), list(self.weights.values()))[0]
        if self._actions[kind]():
            self.faults[kind] += 1
        self._schedule_next()

    def stop(self) -> None:
        """Encerra as falhas: rede inteira, taxas de fundo e todos os nós no ar."""
        self._active = False
        cluster = self.cluster
        network = cluster.network
        network.heal()
        network.drop_rate, network.duplicate_rate, network.max_delay = self._base
        for node in cluster.nodes.values():
            node.crash_in_next_ready = None
            cluster.restart(node.node_id)
        cluster._notify("rede", logging.WARNING, "fim das falhas")

    # ---- as falhas ---------------------------------------------------------

    def _victim(self) -> Optional[str]:
        """Sorteia um nó no ar; metade das vezes, o líder, se houver."""
        cluster = self.cluster
        leader = cluster.leader()
        if leader is not None and self.rng.random() < 0.5:
            return leader
        alive = [node_id for node_id in cluster.node_ids if cluster.nodes[node_id].up]
        return self.rng.choice(alive) if alive else None

    def _restart_later(self, node_id: str, low: float, high: float) -> None:
        self.cluster.schedule(self.rng.uniform(low, high), self.cluster.restart, node_id)

    def _crash(self) -> bool:
        victim = self._victim()
        if victim is None:
            return False
        self.cluster.crash(victim)
        self._restart_later(victim, 0.05, 2.0)
        return True

    def _crash_mid_ready(self) -> bool:
        victim = self._victim()
        if victim is None:
            return False
        peers = len(self.cluster.nodes[victim].peers)
        self.cluster.crash_in_next_ready(victim, self.rng.randint(0, peers))
        self._restart_later(victim, 0.1, 2.0)
        return True

    def _crash_all(self) -> bool:
        for node_id in self.cluster.node_ids:
            self.cluster.crash(node_id)
            self._restart_later(node_id, 0.05, 1.5)
        return True

    def _partition(self) -> bool:
        ids = self.cluster.node_ids
        if len(ids) < 2:
            return False
        shuffled = self.rng.sample(ids, len(ids))
        group_count = self.rng.randint(2, min(3, len(ids)))
        cuts = sorted(self.rng.sample(range(1, len(ids)), group_count - 1))
        groups = [shuffled[start:end] for start, end in zip([0] + cuts, cuts + [len(ids)])]
        self.cluster.partition(*groups)
        self._generation["partição"] += 1
        self.cluster.schedule(self.rng.uniform(0.2, 3.0), self._end_partition,
                              self._generation["partição"])
        return True

    def _end_partition(self, generation: int) -> None:
        if self._active and generation == self._generation["partição"]:
            self.cluster.network.groups = None
            self.cluster._notify("rede", logging.WARNING, "partição desfeita")

    def _cut_link(self) -> bool:
        ids = self.cluster.node_ids
        if len(ids) < 2:
            return False
        source, destination = self.rng.sample(ids, 2)
        self.cluster.cut_link(source, destination)
        self.cluster.schedule(self.rng.uniform(0.2, 2.0),
                              self.cluster.network.blocked_links.discard,
                              (source, destination))
        return True

    def _set_rate_for_a_while(self, kind: str, attribute: str, value: float) -> None:
        network = self.cluster.network
        setattr(network, attribute, value)
        self._generation[kind] += 1
        self.cluster._notify("rede", logging.WARNING, f"{kind}: {attribute}={value:.3f}")
        self.cluster.schedule(self.rng.uniform(0.2, 2.0), self._restore_rate, kind,
                              attribute, self._generation[kind])

    def _restore_rate(self, kind: str, attribute: str, generation: int) -> None:
        if self._active and generation == self._generation[kind]:
            drop_rate, duplicate_rate, max_delay = self._base
            base = {"drop_rate": drop_rate, "duplicate_rate": duplicate_rate,
                    "max_delay": max_delay}
            setattr(self.cluster.network, attribute, base[attribute])

    def _loss(self) -> bool:
        self._set_rate_for_a_while("perda de mensagens", "drop_rate",
                                   self.rng.uniform(0.05, 0.5))
        return True

    def _duplication(self) -> bool:
        self._set_rate_for_a_while("duplicação de mensagens", "duplicate_rate",
                                   self.rng.uniform(0.1, 0.6))
        return True

    def _delay(self) -> bool:
        self._set_rate_for_a_while("atraso de mensagens", "max_delay",
                                   self.rng.uniform(0.05, 0.5))
        return True

    def _pause(self) -> bool:
        victim = self._victim()
        if victim is None:
            return False
        self.cluster.pause(victim, self.rng.uniform(0.05, 1.5))
        return True


class Workload:
    """Clientes que fazem operações sem parar, com uma pausa sorteada entre elas.

    Cada put grava um valor único, para que uma leitura mostre exatamente qual
    escrita ela viu.
    """

    def __init__(self, cluster: Cluster, rng: random.Random, client_count: int,
                 keys: list, max_think_time: float = 0.2):
        self.cluster = cluster
        self.rng = rng
        self.keys = keys
        self.max_think_time = max_think_time
        self.clients = [cluster.client(f"c{number}") for number in range(1, client_count + 1)]
        self._values = itertools.count(1)
        self._active = False

    def start(self) -> None:
        self._active = True
        for client in self.clients:
            self.cluster.schedule(self.rng.uniform(0, self.max_think_time), self._next, client)

    def stop(self) -> None:
        """Não começa operações novas; as em andamento terminam normalmente."""
        self._active = False

    def idle(self) -> bool:
        return all(client.idle for client in self.clients)

    def _next(self, client: Client) -> None:
        if not self._active or not client.idle:
            return
        kind = self.rng.choices(("put", "get", "delete"), (5, 4, 1))[0]
        key = self.rng.choice(self.keys)
        value = next(self._values) if kind == "put" else None
        client.submit(kind, key, value, on_done=self._done)

    def _done(self, client: Client, operation: Operation) -> None:
        if self._active:
            self.cluster.schedule(self.rng.uniform(0, self.max_think_time), self._next, client)


@dataclass
class ScheduleReport:
    """O que um cronograma aleatório exercitou."""

    seed: int
    nodes: int
    events: int = 0
    simulated_time: float = 0.0
    messages: int = 0
    checks: int = 0
    faults: collections.Counter = field(default_factory=collections.Counter)
    operations: collections.Counter = field(default_factory=collections.Counter)
    # Limite de entradas por AppendEntries, ou None para o limite normal.
    entries_per_append: Optional[int] = None


def replay_command(seed: int) -> str:
    return f"python3 raft_example.py --verify 1 --seed {seed} --trace"


def run_random_schedule(seed: int, listeners: tuple = (),
                        broken_executor: Optional[str] = None) -> ScheduleReport:
    """Roda o cronograma aleatório da semente `seed`.

    Levanta SafetyViolation, LivenessFailure ou SimulationError (exceção
    inesperada dentro do núcleo) com a semente e o estado dos nós.
    `broken_executor` é repassado ao Cluster (veja lá).
    """
    rng = random.Random(seed)
    node_count = rng.choice((1, 2, 3, 3, 4, 5, 5, 5))
    config = SimConfig(max_delay=rng.choice((0.005, 0.01, 0.02, 0.05)),
                       drop_rate=rng.choice((0.0, 0.0, 0.01, 0.05)),
                       duplicate_rate=rng.choice((0.0, 0.0, 0.01, 0.05)),
                       wire="json" if rng.random() < 0.2 else "copy")
    cluster = Cluster(node_count, seed=seed, rng=rng, config=config,
                      broken_executor=broken_executor)
    cluster.listeners.extend(listeners)
    injector = FaultInjector(cluster, rng, mean_interval=rng.uniform(0.15, 1.0))
    workload = Workload(cluster, rng, client_count=rng.randint(1, 3),
                        keys=["x", "y", "z"][:rng.randint(1, 3)])
    chaos_duration = rng.uniform(2.0, 6.0)
    batch_limit = rng.choice((None, None, 1, 2, 3))
    try:
        with entries_per_append(batch_limit):
            _run_schedule(cluster, injector, workload, chaos_duration)
    except SimulationError as error:
        error.report += f"\npara repetir: {replay_command(seed)}"
        raise
    except Exception as error:
        failure = cluster.failure(SimulationError,
                                  f"exceção inesperada: {error!r}\n{traceback.format_exc()}")
        failure.report += f"\npara repetir: {replay_command(seed)}"
        raise failure from error
    report = ScheduleReport(seed, node_count, events=cluster.events,
                            simulated_time=cluster.now,
                            messages=cluster.stats["mensagens"],
                            checks=cluster.checker.checks, faults=injector.faults,
                            entries_per_append=batch_limit)
    for operation in cluster.history:
        report.operations[operation.status] += 1
    return report


def _run_schedule(cluster: Cluster, injector: FaultInjector, workload: Workload,
                  chaos_duration: float) -> None:
    """Falhas e clientes por `chaos_duration` segundos; depois, a recuperação e
    as conferências finais."""
    config = cluster.config
    workload.start()
    injector.start(until=chaos_duration)
    cluster.run_for(chaos_duration)
    injector.stop()
    workload.stop()
    if not cluster.run_until(workload.idle, config.client_operation_timeout + 1.0):
        raise cluster.failure(LivenessFailure,
                              "falha de vivacidade: clientes ainda esperavam resposta "
                              "depois do prazo de operação")
    if not cluster.run_until(cluster.converged, CONVERGENCE_TIMEOUT):
        raise cluster.failure(LivenessFailure,
                              f"falha de vivacidade: o cluster não convergiu em "
                              f"{CONVERGENCE_TIMEOUT:.0f} s depois do fim das falhas "
                              f"(líderes no ar: {cluster.leaders() or 'nenhum'})")
    cluster.checker.check_final()
    result = check_linearizability(cluster.history)
    if not result.ok:
        raise cluster.failure(SafetyViolation, f"linearizabilidade: {result.message}")


@dataclass
class VerificationSummary:
    """Totais de muitos cronogramas aleatórios."""

    schedules: int = 0
    events: int = 0
    simulated_time: float = 0.0
    messages: int = 0
    checks: int = 0
    faults: collections.Counter = field(default_factory=collections.Counter)
    operations: collections.Counter = field(default_factory=collections.Counter)
    cluster_sizes: collections.Counter = field(default_factory=collections.Counter)
    small_batches: int = 0
    # (semente, texto da falha)
    failures: list = field(default_factory=list)

    def add(self, report: ScheduleReport) -> None:
        self.schedules += 1
        self.events += report.events
        self.simulated_time += report.simulated_time
        self.messages += report.messages
        self.checks += report.checks
        self.faults.update(report.faults)
        self.operations.update(report.operations)
        self.cluster_sizes[report.nodes] += 1
        if report.entries_per_append is not None:
            self.small_batches += 1

    def format(self) -> str:
        faults = ", ".join(f"{kind}: {self.faults[kind]}" for kind in FAULT_WEIGHTS
                           if self.faults[kind])
        sizes = ", ".join(f"{size} nó(s): {self.cluster_sizes[size]}"
                          for size in sorted(self.cluster_sizes))
        operations = self.operations
        lines = [
            f"{self.schedules} cronogramas, {len(self.failures)} com falha",
            f"  tamanhos de cluster: {sizes or '-'}; {self.small_batches} com lotes de "
            f"1 a 3 entradas por AppendEntries",
            f"  {self.events} eventos, {self.messages} mensagens, "
            f"{self.simulated_time:.0f} s de tempo simulado, "
            f"{self.checks} conferências de segurança",
            f"  {sum(self.faults.values())} falhas injetadas ({faults or 'nenhuma'})",
            f"  {sum(operations.values())} operações de clientes: {operations['ok']} "
            f"confirmadas, {operations['unknown']} escritas de resultado desconhecido, "
            f"{operations['failed']} leituras sem resposta",
        ]
        return "\n".join(lines)


def _run_seed(seed: int) -> tuple:
    try:
        return seed, run_random_schedule(seed), None
    except SimulationError as error:
        return seed, None, str(error)


def verify(first_seed: int, count: int, jobs: int = 1,
           progress: Optional[Callable] = None) -> VerificationSummary:
    """Roda os cronogramas das sementes first_seed .. first_seed + count - 1.

    Com jobs > 1, distribui as sementes entre processos; o resultado de cada
    semente não depende disso. `progress(resumo)` é chamada a cada cronograma.
    """
    summary = VerificationSummary()
    seeds = range(first_seed, first_seed + count)

    def absorb(result: tuple) -> None:
        seed, report, failure = result
        if failure is None:
            summary.add(report)
        else:
            summary.schedules += 1
            summary.failures.append((seed, failure))
        if progress is not None:
            progress(summary)

    if jobs <= 1:
        for seed in seeds:
            absorb(_run_seed(seed))
    else:
        import multiprocessing
        with multiprocessing.Pool(jobs) as pool:
            for result in pool.imap_unordered(_run_seed, seeds, chunksize=8):
                absorb(result)
    summary.failures.sort(key=lambda failure: failure[0])
    return summary


# ============================================================================
# 8. Demonstração narrada
# ============================================================================

class DemoError(Exception):
    """O cenário não chegou aonde a narração esperava (por exemplo, sem líder)."""


class Demo:
    """A demonstração para a aula: um Cluster, a narração e as pausas.

    Os métodos de ação (run_until_leader, write, crash, partition, ...) mexem
    no cluster e mostram, linha por linha, o que os núcleos registram. Ali
    aparecem cada eleição, cada voto concedido ou negado com o motivo, cada
    conflito de log e as mensagens dos clientes. show() imprime o estado de
    todos os nós.

    Num terminal, a narração faz pausas (reguladas por `speed`; 0 tira as
    pausas), ou espera Enter a cada passo com step=True. Fora de um terminal
    não há pausa nenhuma, e a mesma semente produz o mesmo texto.
    """

    def __init__(self, nodes: Any = 5, seed: int = DEMO_SEED, *, step: bool = False,
                 speed: float = 1.0, details: bool = False, output: Any = None,
                 config: Optional[SimConfig] = None):
        self.output = output if output is not None else sys.stdout
        isatty = getattr(self.output, "isatty", None)
        self.interactive = bool(isatty and isatty())
        self.step_mode = step
        self.speed = speed
        self.details = details
        self.seed = seed
        self.cluster = Cluster(nodes, seed=seed, config=config)
        self.cluster.listeners.append(self._narrate)
        self.client = self.cluster.client("cliente")
        self.steps = 0
        self._legend_shown = False
        self._last_line_blank = False

    # ---- saída -------------------------------------------------------------

    def _print(self, text: str = "") -> None:
        # Duas linhas em branco seguidas viram uma só.
        if not text and self._last_line_blank:
            return
        self._last_line_blank = not text
        print(text, file=self.output, flush=self.interactive)

    def _narrate(self, event: TraceEvent) -> None:
        if not self.details and (event.level < logging.INFO
                                 or event.text.startswith("estado:")):
            return
        self._print(f"  {event.time:7.3f}s  {event.source:<9} {event.text}")
        if self.interactive and self.speed > 0:
            time.sleep(0.03 / self.speed)

    def pause(self) -> None:
        """Espera Enter (modo passo a passo) ou faz uma pausa curta no terminal."""
        if self.step_mode:
            try:
                input("  [Enter para continuar] ")
            except EOFError:
                pass
        elif self.interactive and self.speed > 0:
            time.sleep(1.5 / self.speed)

    def section(self, title: str, text: str = "") -> None:
        """Abre um passo novo da demonstração, com título e explicação."""
        if self.steps:
            self.pause()
        self.steps += 1
        heading = f"Passo {self.steps}. {title}"
        self._print()
        self._print(heading)
        self._print("-" * len(heading))
        if text:
            self.say(text)

    def say(self, text: str) -> None:
        """Imprime um parágrafo de explicação."""
        self._print(textwrap.fill(text, width=78))
        self._print()

    def show(self) -> None:
        """Imprime o estado de todos os nós."""
        self._print()
        for line in format_cluster(self.cluster):
            self._print("  " + line)
        if not self._legend_shown:
            self._legend_shown = True
            self._print("  (log: termo:comando; · é a entrada vazia de um líder novo; o que "
                        "vem depois de | ainda")
            self._print("   não está comprometido. Um nó fora do ar mostra o que guardou "
                        "no disco.)")
        self._print()

    # ---- ações -------------------------------------------------------------

    def leader(self) -> Optional[str]:
        return self.cluster.leader()

    def run_for(self, seconds: float) -> None:
        self.cluster.run_for(seconds)

    def run_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        return self.cluster.run_until(predicate, timeout)

    def run_until_leader(self, timeout: float = 10.0, exclude: tuple = ()) -> str:
        """Roda até haver um líder fora de `exclude`; devolve o id dele."""
        def elected() -> bool:
            leader = self.cluster.leader()
            return leader is not None and leader not in exclude

        if not self.cluster.run_until(elected, timeout):
            raise DemoError(f"nenhum líder novo em {timeout:.0f} s de tempo simulado; "
                            f"confira se a maioria dos nós está no ar e se falando")
        return self.cluster.leader()

    def run_until_in_sync(self, timeout: float = 10.0) -> None:
        """Roda até todos os nós no ar terem o log do líder, comprometido e aplicado."""
        def in_sync() -> bool:
            alive = [node_id for node_id, node in self.cluster.nodes.items() if node.up]
            return self.cluster.in_sync(alive)

        if not self.cluster.run_until(in_sync, timeout):
            raise DemoError(f"os nós no ar não alcançaram o líder em {timeout:.0f} s de "
                            f"tempo simulado; confira se algum está isolado por uma partição")

    def _operation(self, kind: str, key: str, value: Any, via: Optional[str], retry: bool,
                   wait: bool, client: Optional[Client]) -> Operation:
        client = client or self.client
        operation = client.submit(kind, key, value, target=via, retry=retry)
        if wait:
            self.cluster.run_until(lambda: client.idle,
                                   self.cluster.config.client_operation_timeout + 1)
        return operation

    def write(self, key: str, value: Any, *, via: Optional[str] = None, retry: bool = True,
              wait: bool = True, client: Optional[Client] = None) -> Operation:
        """Um cliente grava key=value; `via` escolhe o primeiro nó procurado.

        Com wait=True, roda a simulação até o cliente receber a confirmação ou
        desistir.
        """
        return self._operation("put", key, value, via, retry, wait, client)

    def delete(self, key: str, **options: Any) -> Operation:
        return self._operation("delete", key, None, options.get("via"),
                               options.get("retry", True), options.get("wait", True),
                               options.get("client"))

    def read(self, key: str, **options: Any) -> Operation:
        return self._operation("get", key, None, options.get("via"),
                               options.get("retry", True), options.get("wait", True),
                               options.get("client"))

    def crash(self, node_id: str) -> None:
        self.cluster.crash(node_id)

    def restart(self, node_id: str) -> None:
        self.cluster.restart(node_id)

    def partition(self, *groups: list) -> None:
        self.cluster.partition(*groups)

    def heal(self) -> None:
        self.cluster.heal()

    def run(self, scenario: Callable[["Demo"], None]) -> None:
        """Roda um cenário (uma função que recebe a Demo) com abertura e fechamento."""
        count = len(self.cluster.node_ids)
        title = (f"Raft em sala de aula: {count} servidores num só processo "
                 f"(semente {self.seed})")
        self._print(title)
        self._print("=" * len(title))
        self._print(textwrap.fill(
            "Cada servidor roda o mesmo núcleo Raft de raft_distribuido.py. As mensagens "
            "passam por uma rede simulada e o tempo é simulado: os instantes à esquerda "
            "são segundos desde o início. As linhas vêm dos próprios núcleos e dizem o "
            "que cada um fez e por quê.", width=78))
        scenario(self)
        checker = self.cluster.checker
        self.pause()
        self._print()
        self._print(textwrap.fill(
            f"Durante toda a demonstração ({self.cluster.events} eventos em "
            f"{self.cluster.now:.1f} s simulados), o verificador conferiu as propriedades "
            f"de segurança do Raft depois de cada uma das {checker.checks} chamadas aos "
            f"núcleos: nenhuma violação.", width=78))


def _entries_with_key(cluster: Cluster, key: str) -> list:
    """Nós que têm no log (na memória ou no disco) algum comando sobre `key`."""
    holders = []
    for node_id, node in cluster.nodes.items():
        log = node.core.log if node.core is not None else node.storage.entries
        if any(entry.command is not None and entry.command.get("key") == key
               for entry in log):
            holders.append(node_id)
    return holders


def _format_store(node: SimNode) -> str:
    if node.kv is None:
        return "(fora do ar)"
    items = sorted(node.kv.data.items())
    return ", ".join(f"{key}={value}" for key, value in items) or "(vazio)"


def step_initial_state(demo: Demo) -> None:
    count = len(demo.cluster.node_ids)
    config = demo.cluster.config
    demo.section(
        "Nenhum líder ainda",
        f"Os {count} servidores começam como seguidores, no termo 0, com o log vazio. "
        f"Cada um sorteou um timeout de eleição entre "
        f"{config.election_timeout_min * 1000:.0f} e "
        f"{config.election_timeout_max * 1000:.0f} ms (§5.2). Quem passar esse tempo "
        f"sem notícias de um líder vira candidato: aumenta o termo, vota em si mesmo "
        f"e pede votos aos outros com RequestVote. O sorteio faz com que, quase "
        f"sempre, um só acorde primeiro.")
    demo.show()


def step_first_election(demo: Demo) -> str:
    demo.section(
        "A primeira eleição",
        "Cada servidor vota no máximo uma vez por termo, no primeiro candidato que "
        "pedir e cujo log seja pelo menos tão atualizado quanto o seu (§5.2, §5.4.1). "
        "Quem junta os votos da maioria vira líder e passa a mandar AppendEntries, "
        "que também servem de heartbeat.")
    leader = demo.run_until_leader()
    demo.run_until_in_sync()
    demo.show()
    core = demo.cluster.core(leader)
    demo.say(
        f"{leader} é o líder do termo {core.current_term}. Como todo líder novo, ele "
        f"gravou uma entrada vazia (·) no próprio termo: um líder só sabe até onde o "
        f"log está comprometido depois de comprometer uma entrada sua (§5.4.2).")
    return leader


def step_replication(demo: Demo) -> None:
    demo.section(
        "Replicação de comandos",
        "Um cliente grava x=1, y=2 e z=3. Ele não sabe quem é o líder: se perguntar a "
        "um seguidor, recebe a dica de quem é. O líder acrescenta o comando ao próprio "
        "log e o envia aos seguidores no AppendEntries. Quando a maioria guardou a "
        "entrada, ela está comprometida: o líder aplica o comando ao armazenamento "
        "chave-valor e só então responde. Os seguidores aplicam quando o campo "
        "leader_commit de um AppendEntries seguinte mostra o novo commit.")
    for key, value in (("x", 1), ("y", 2), ("z", 3)):
        demo.write(key, value)
    demo.run_until_in_sync()
    demo.show()
    demo.say(
        "Todos os logs têm as mesmas entradas nos mesmos índices e termos (Log "
        "Matching), e todos os nós aplicaram os mesmos comandos na mesma ordem (State "
        "Machine Safety).")


def step_leader_crash(demo: Demo) -> str:
    old = demo.leader()
    demo.section(
        "O líder cai",
        f"{old} para de funcionar. Os seguidores deixam de receber heartbeats, e o "
        f"primeiro cujo timeout vencer começa uma eleição num termo novo. Só ganha "
        f"quem tem o log pelo menos tão atualizado quanto o da maioria (§5.4.1); "
        f"assim o novo líder já tem todas as entradas comprometidas.")
    demo.crash(old)
    new = demo.run_until_leader()
    demo.run_until_in_sync()
    demo.show()
    demo.say(
        f"{new} é o novo líder, no termo {demo.cluster.core(new).current_term}. Nada do "
        f"que estava comprometido se perdeu. O cliente continua gravando, agora no "
        f"líder novo.")
    demo.write("x", 4)
    return old


def step_restart(demo: Demo, node_id: str) -> None:
    demo.section(
        "O antigo líder volta",
        f"{node_id} volta com o termo, o voto e o log que gravou no disco antes de "
        f"cair; o resto (papel, commit, armazenamento chave-valor) ele reconstrói. No "
        f"primeiro AppendEntries de termo maior, reconhece o novo líder e recebe as "
        f"entradas que perdeu. O armazenamento é refeito aplicando o log desde o "
        f"início.")
    demo.restart(node_id)
    demo.run_until_in_sync()
    demo.show()


def step_partition(demo: Demo) -> tuple:
    cluster = demo.cluster
    leader = demo.leader()
    others = [node_id for node_id in cluster.node_ids if node_id != leader]
    minority_size = (len(cluster.node_ids) - 1) // 2
    minority = [leader] + others[:minority_size - 1]
    majority = others[minority_size - 1:]
    old_term = cluster.core(leader).current_term

    demo.section(
        "Partição: o líder fica na minoria",
        f"A rede se parte em dois lados que não se falam: {', '.join(minority)} de um, "
        f"{', '.join(majority)} do outro. Um cliente do lado de {leader} grava w=9 "
        f"nele e espera uma resposta.")
    demo.partition(minority, majority)
    writer = cluster.client("cliente-2")
    demo.write("w", 9, via=leader, retry=False, wait=False, client=writer)
    demo.run_for(0.2)
    demo.show()

    demo.say(
        f"{leader} acrescentou w=9 ao log, mas só {len(minority)} de "
        f"{len(cluster.node_ids)} nós guardam a entrada. Sem maioria ela não fica "
        f"comprometida, e o cliente não recebe resposta. Do outro lado, os nós deixam "
        f"de ouvir o líder e fazem uma eleição.")

    new = demo.run_until_leader(exclude=(leader,))
    demo.write("v", 7, via=new)
    demo.run_for(0.1)
    demo.show()

    new_term = cluster.core(new).current_term
    if cluster.core(leader).role == Role.LEADER:
        demo.say(
            f"Agora há dois nós que se dizem líderes: {leader} no termo {old_term} e "
            f"{new} no termo {new_term}. Isso não viola a Election Safety, que pede um "
            f"líder por termo. Só {new} consegue comprometer entradas, porque só ele "
            f"alcança a maioria; v=7 ficou comprometido do lado dele.")
    else:
        demo.say(
            f"{new} é o líder do termo {new_term}, e v=7 ficou comprometido do lado "
            f"dele. {leader} já deixou de ser líder: sem ouvir a maioria durante um "
            f"timeout de eleição inteiro, ele desiste do cargo (check-quorum), para que "
            f"os clientes procurem o líder certo.")
    return leader, minority


def step_heal(demo: Demo, old_leader: str, minority: list) -> None:
    cluster = demo.cluster
    term_before = cluster.core(cluster.leader()).current_term
    demo.section(
        "A rede volta",
        f"Os dois lados voltam a se falar. {old_leader} recebe mensagens de um termo "
        f"maior e passa a seguidor. As entradas que ele e os outros nós da minoria "
        f"acrescentaram sem maioria, como w=9, conflitam com o log do líder: são "
        f"apagadas e substituídas (§5.3).")
    demo.heal()
    if not cluster.run_until(cluster.converged, 10.0):
        raise DemoError("o cluster não convergiu em 10 s depois da volta da rede")
    demo.show()
    term_after = cluster.core(cluster.leader()).current_term
    if not _entries_with_key(cluster, "w"):
        demo.say(
            "w=9 sumiu de todos os logs. Nenhuma promessa foi quebrada: o cliente "
            "nunca recebeu confirmação dessa escrita. (Um cliente de verdade tentaria "
            "de novo, e a sessão do cliente garantiria que ela fosse aplicada uma vez só.)")
    if term_after > term_before:
        demo.say(
            f"O termo subiu de {term_before} para {term_after}: enquanto estavam "
            f"isolados, os nós da minoria tentaram se eleger várias vezes, e o termo "
            f"deles passou o do líder. Ao voltar, esse termo maior derrubou o líder, "
            f"mas eles não podiam ganhar: os outros negaram o voto porque o log deles "
            f"estava atrasado (§5.4.1). O pre-vote (§9.6 da tese de Ongaro) evitaria "
            f"essa eleição extra; este núcleo ainda não o tem.")


def step_follower_down(demo: Demo) -> str:
    cluster = demo.cluster
    leader = demo.leader()
    follower = next(node_id for node_id in cluster.node_ids if node_id != leader)
    demo.section(
        "Um seguidor fora do ar",
        f"{follower} cai. O líder continua mandando AppendEntries para ele, sem "
        f"resposta, e continua comprometendo entradas com os outros, que ainda são "
        f"maioria.")
    demo.crash(follower)
    demo.write("a", 10)
    demo.run_until_in_sync()
    demo.show()
    return follower


def step_no_majority(demo: Demo) -> list:
    cluster = demo.cluster
    leader = demo.leader()
    alive = [node_id for node_id, node in cluster.nodes.items() if node.up]
    count = len(cluster.node_ids)
    keep = count // 2      # nós no ar depois das quedas: menos que a maioria
    victims = [node_id for node_id in alive if node_id != leader][:len(alive) - keep]
    demo.section(
        "Sem maioria, nada se compromete",
        f"Caem também {', '.join(victims)}: só {keep} de {count} nós continuam no ar. "
        f"O cliente pede b=20 ao líder, que acrescenta a entrada ao log, mas ninguém "
        f"mais a confirma.")
    for victim in victims:
        demo.crash(victim)
    demo.write("b", 20, via=leader, retry=False, wait=False)
    demo.run_for(0.3)
    demo.show()
    demo.say(
        "A entrada b=20 está no log do líder, depois do |: não comprometida, não "
        "aplicada e sem resposta ao cliente. Um pouco depois, o líder percebe que não "
        "ouve a maioria e deixa o cargo (check-quorum).")
    demo.run_for(1.0)
    return [node_id for node_id in cluster.node_ids if not cluster.nodes[node_id].up]


def step_recovery(demo: Demo, down: list) -> None:
    demo.section(
        "Os nós voltam",
        f"{', '.join(down)} voltam com o que tinham no disco. Com a maioria de novo, "
        f"um líder é eleito e o cluster volta a comprometer entradas.")
    for node_id in down:
        demo.restart(node_id)
    demo.run_until_leader()
    demo.write("b", 21)
    demo.run_until_in_sync()
    demo.show()
    if _entries_with_key(demo.cluster, "b"):
        demo.say(
            "Repare em b=20: se o líder eleito tinha essa entrada no log, ela foi "
            "comprometida junto com a entrada vazia dele; se não tinha, ela foi "
            "apagada. As duas coisas são seguras, porque o cliente nunca recebeu "
            "confirmação de b=20.")


def step_summary(demo: Demo) -> None:
    demo.section("Resumo", "O armazenamento chave-valor de cada nó no fim:")
    for node_id, node in demo.cluster.nodes.items():
        demo._print(f"  {node_id:<4} {_format_store(node)}")
    demo._print()


def scenario_complete(demo: Demo) -> None:
    step_initial_state(demo)
    step_first_election(demo)
    step_replication(demo)
    old_leader = step_leader_crash(demo)
    step_restart(demo, old_leader)
    isolated_leader, minority = step_partition(demo)
    step_heal(demo, isolated_leader, minority)
    step_summary(demo)


def scenario_election(demo: Demo) -> None:
    step_initial_state(demo)
    step_first_election(demo)
    old_leader = step_leader_crash(demo)
    step_restart(demo, old_leader)


def scenario_replication(demo: Demo) -> None:
    step_first_election(demo)
    step_replication(demo)
    step_follower_down(demo)
    down = step_no_majority(demo)
    step_recovery(demo, down)
    step_summary(demo)


def scenario_partition(demo: Demo) -> None:
    step_first_election(demo)
    step_replication(demo)
    isolated_leader, minority = step_partition(demo)
    step_heal(demo, isolated_leader, minority)
    step_summary(demo)


# Nome na linha de comando -> (descrição, função do cenário).
SCENARIOS = {
    "completo": ("eleição, replicação, queda e volta do líder, partição com o líder na "
                 "minoria e a volta da rede", scenario_complete),
    "eleicao": ("a primeira eleição, a queda do líder e a nova eleição", scenario_election),
    "replicacao": ("replicação com todos os nós, com um seguidor fora e sem maioria",
                   scenario_replication),
    "particao": ("o líder isolado na minoria e a volta da rede", scenario_partition),
}


# ============================================================================
# 9. Linha de comando
# ============================================================================

def build_parser() -> argparse.ArgumentParser:
    scenario_lines = "\n".join(f"  {name:<11} {description}"
                               for name, (description, _) in SCENARIOS.items())
    parser = argparse.ArgumentParser(
        prog="raft_example.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Raft em sala de aula: vários servidores Raft num só processo, com "
                    "rede e relógio simulados,\nrodando o mesmo núcleo de "
                    "raft_distribuido.py. Sem opções, roda a demonstração completa\n"
                    "com 5 nós.",
        epilog=f"cenários:\n{scenario_lines}\n\n"
               f"exemplos:\n"
               f"  python3 raft_example.py --step                 "
               f"um passo por Enter, para a aula\n"
               f"  python3 raft_example.py --scenario particao --nodes 3\n"
               f"  python3 raft_example.py --seed 7               "
               f"outra execução (outro líder, outros tempos)\n"
               f"  python3 raft_example.py --verify 20000         "
               f"20 000 cronogramas aleatórios de falhas")

    parser.add_argument("--scenario", default="completo", choices=list(SCENARIOS),
                        metavar="NOME",
                        help="cenário da demonstração (padrão: %(default)s; a lista está "
                             "no fim desta ajuda)")
    parser.add_argument("--list", action="store_true",
                        help="lista os cenários e sai")

    parser.add_argument("--nodes", type=int, default=5, metavar="N",
                        help="número de servidores na demonstração, de 3 a 9 (padrão: "
                             "%(default)s)")
    parser.add_argument("--seed", type=int, default=None, metavar="N",
                        help="semente do sorteio: a mesma semente repete a execução evento "
                             f"por evento (padrão: {DEMO_SEED} na demonstração; com "
                             f"--verify, a primeira semente, padrão 1)")
    parser.add_argument("--step", action="store_true",
                        help="espera Enter depois de cada passo")
    parser.add_argument("--speed", type=float, default=1.0, metavar="X",
                        help="velocidade das pausas no terminal: 2 = duas vezes mais "
                             "rápido, 0 = sem pausas (padrão: %(default)s)")
    parser.add_argument("--details", action="store_true",
                        help="mostra também heartbeats, mensagens de rotina e as linhas de "
                             "estado dos núcleos")

    parser.add_argument("--verify", type=int, default=None, metavar="N",
                        help="em vez da demonstração, roda N cronogramas aleatórios de "
                             "falhas e confere a segurança do Raft e a linearizabilidade")
    parser.add_argument("--jobs", type=int, default=None, metavar="J",
                        help="processos usados por --verify (padrão: número de CPUs)")
    parser.add_argument("--trace", action="store_true",
                        help="com --verify, mostra cada evento dos cronogramas; use com "
                             "--verify 1 --seed S para repetir uma falha")
    return parser


def _main_verify(args: argparse.Namespace) -> int:
    first_seed = args.seed if args.seed is not None else 1
    count = args.verify
    if args.trace:
        def show(event: TraceEvent) -> None:
            if args.details or event.level >= logging.INFO:
                print(f"{event.time:9.4f}s  {event.source:<8} {event.text}")
        summary = VerificationSummary()
        for seed in range(first_seed, first_seed + count):
            print(f"=== semente {seed} ===")
            try:
                summary.add(run_random_schedule(seed, listeners=(show,)))
            except SimulationError as error:
                summary.schedules += 1
                summary.failures.append((seed, str(error)))
    else:
        jobs = args.jobs or os.cpu_count() or 1
        print(f"verificando {count} cronogramas aleatórios (sementes {first_seed} a "
              f"{first_seed + count - 1}, {jobs} processo(s))", flush=True)
        started = time.monotonic()
        interactive = sys.stderr.isatty()

        def progress(summary: VerificationSummary) -> None:
            if interactive and (summary.schedules % 50 == 0 or summary.schedules == count):
                print(f"\r  {summary.schedules}/{count}, {len(summary.failures)} com falha",
                      end="", file=sys.stderr, flush=True)

        summary = verify(first_seed, count, jobs, progress)
        if interactive:
            print(file=sys.stderr)
        print(f"tempo: {time.monotonic() - started:.1f} s")
    print(summary.format())
    for seed, text in summary.failures[:3]:
        print()
        print(f"--- falha na semente {seed} ---")
        print(text)
    if summary.failures:
        seeds = " ".join(str(seed) for seed, _ in summary.failures[:100])
        print()
        print(f"sementes com falha: {seeds}")
        return 1
    return 0


def main(argv: Optional[list] = None) -> int:
    translate_argparse_messages()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        for name, (description, _) in SCENARIOS.items():
            print(f"{name:<11} {description}")
        return 0
    if args.verify is not None:
        if args.verify < 1:
            parser.error(f"--verify {args.verify}: o número de cronogramas precisa ser "
                         f"pelo menos 1")
        if args.jobs is not None and args.jobs < 1:
            parser.error(f"--jobs {args.jobs}: o número de processos precisa ser pelo "
                         f"menos 1")
        return _main_verify(args)
    if not 3 <= args.nodes <= 9:
        parser.error(f"--nodes {args.nodes}: a demonstração usa de 3 a 9 servidores")
    if args.speed < 0:
        parser.error(f"--speed {args.speed}: a velocidade não pode ser negativa; use 0 "
                     f"para tirar as pausas")
    seed = args.seed if args.seed is not None else DEMO_SEED
    demo = Demo(args.nodes, seed, step=args.step, speed=args.speed, details=args.details)
    try:
        demo.run(SCENARIOS[args.scenario][1])
    except KeyboardInterrupt:
        print("\ndemonstração interrompida", file=sys.stderr)
        return 130
    except (SimulationError, DemoError) as error:
        print(f"\nerro na demonstração (semente {seed}): {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
