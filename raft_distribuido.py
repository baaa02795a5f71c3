#!/usr/bin/env python3
"""Nó Raft para o laboratório de sistemas distribuídos, em Python puro.

Um único arquivo, só com a biblioteca padrão (Python 3.10 ou mais novo). Cada
máquina do laboratório roda um nó; os nós elegem um líder, replicam um log e
aplicam esse log a um armazenamento chave-valor que qualquer `curl` lê e escreve.
O algoritmo segue o artigo "In Search of an Understandable Consensus Algorithm"
(Ongaro e Ousterhout, 2014); as referências "§5.2", "Figura 2" etc. nos
comentários apontam para as seções desse artigo.

Como iniciar três nós em três máquinas (um comando em cada máquina):

    python3 raft_distribuido.py --id 0 --host 192.168.1.10 --port 8000 \\
        --peers http://192.168.1.11:8001 http://192.168.1.12:8002
    python3 raft_distribuido.py --id 1 --host 192.168.1.11 --port 8001 \\
        --peers http://192.168.1.10:8000 http://192.168.1.12:8002
    python3 raft_distribuido.py --id 2 --host 192.168.1.12 --port 8002 \\
        --peers http://192.168.1.10:8000 http://192.168.1.11:8001

Depois:  curl -X PUT -d '{"value": 42}' http://192.168.1.10:8000/kv/x
         curl http://192.168.1.11:8001/kv/x

Seções deste arquivo, na ordem em que um estudante precisa delas:

    1. Configuração: valores padrão e limites.
    2. Mensagens: RequestVote e AppendEntries, com decodificação estrita de JSON.
    3. Núcleo Raft: o algoritmo puro, sem rede, threads, relógio, sorteio ou arquivos.
    4. Armazenamento: estado persistente em disco (e em memória, para a simulação).
    5. Máquina de estados: o armazenamento chave-valor.
    6. Transporte HTTP: servidor e envio aos pares.
    7. Nó: o laço de eventos que liga núcleo, disco, rede e clientes.
    8. Linha de comando.

Limitações conhecidas:

    - Sem snapshots (§7): o log cresce sem limite, e um nó que volta depois de
      muito tempo recebe o log inteiro.
    - Sem mudança de membros (§6): o conjunto de nós é fixo na linha de comando.
    - Sem pre-vote (§9.6 da tese de Ongaro): um nó isolado que volta com termo
      alto derruba o líder atual uma vez.
    - Sem o segredo do cluster (RAFT_SECRET ou --secret), qualquer máquina da
      rede pode votar e replicar no nó; com ele, as assinaturas não levam data,
      e um pedido antigo repetido só é descartado pelas regras de termo e índice.
"""

from __future__ import annotations

import argparse
import array
import collections
import dataclasses
import enum
import email.utils
import errno
import hashlib
import hmac
import http
import http.client
import http.server
import json
import logging
import os
import queue
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

__version__ = "0.1.0"


# ============================================================================
# 1. Configuração
# ============================================================================

# Tempos em milissegundos, como na linha de comando. A desigualdade de tempo do
# §5.6 pede tempo_de_broadcast << timeout_de_eleição << tempo_entre_falhas: o
# líder manda heartbeats a cada 50 ms, e um seguidor só inicia eleição depois de
# 300 a 450 ms sem notícias, o que tolera vários heartbeats perdidos ou atrasados.
# Quando o líder cai, o tempo até o novo líder é quase todo o menor timeout
# sorteado entre os seguidores. Com 3 nós, a mediana estimada é de 345 ms. Um
# intervalo mais largo deixaria empates de votos mais raros, mas o failover
# mais lento.
DEFAULT_HEARTBEAT_INTERVAL_MS = 50
DEFAULT_ELECTION_TIMEOUT_MIN_MS = 300
DEFAULT_ELECTION_TIMEOUT_MAX_MS = 450

# O menor timeout de eleição precisa ser pelo menos este múltiplo do intervalo
# de heartbeat; abaixo disso, um atraso comum já provoca eleições sem motivo.
MIN_ELECTION_TO_HEARTBEAT_RATIO = 3

# Quanto tempo um cliente espera por uma resposta antes de receber 503.
DEFAULT_REQUEST_TIMEOUT_MS = 5000

# Máximo de conexões HTTP atendidas ao mesmo tempo; cada uma ocupa uma thread.
# Com todas ocupadas, uma conexão nova toma a vaga da que espera o cliente há
# mais tempo (RaftHTTPServer._close_oldest_waiting), ou é fechada.
# NOTE: o corpo é lido inteiro antes da assinatura ser conferida, então, mesmo
# com --secret, quem manda corpos de 4 MiB em /raft/ por todas as conexões faz
# o nó guardar cerca de 1 GiB até a leitura terminar.
MAX_CONNECTIONS = 256

# Maior corpo de requisição HTTP aceito (413 acima disso).
MAX_BODY_BYTES = 1024 * 1024

# Maior corpo aceito em /raft/...: um AppendEntries leva até MAX_APPEND_BYTES de
# comandos, mas sempre pelo menos uma entrada, e uma entrada pode ter quase
# MAX_BODY_BYTES (o maior PUT aceito).
MAX_RAFT_BODY_BYTES = 4 * MAX_BODY_BYTES

# Tamanho aproximado, em bytes de JSON, dos comandos de um AppendEntries; o
# resto segue no próximo. Sem esse limite, um seguidor muito atrasado receberia
# pedidos maiores que MAX_RAFT_BODY_BYTES, recusaria todos e nunca alcançaria
# o líder.
MAX_APPEND_BYTES = 512 * 1024

# Entradas mais recentes cujo comando fica em memória depois de aplicado; as
# mais antigas são lidas do disco quando um seguidor atrasado precisa delas.
RECENT_ENTRIES_IN_MEMORY = 4096

# Máximo de entradas em um AppendEntries; o resto segue no próximo.
MAX_ENTRIES_PER_APPEND = 512

# Maior valor aceito para termos e índices vindos da rede: 2**53 é o maior
# inteiro que qualquer cliente JSON representa sem perder precisão.
MAX_WIRE_INTEGER = 2**53

# Limites de tamanho de campos de texto vindos da rede.
MAX_ID_LENGTH = 64
MAX_KEY_LENGTH = 256

# Cabeçalho que marca uma requisição de cliente já encaminhada por um seguidor,
# para que ela não seja encaminhada de novo (evita laços entre nós).
FORWARDED_HEADER = "X-Raft-Forwarded"

# Cabeçalho com a assinatura HMAC-SHA256 de RPCs Raft e pedidos de /admin,
# quando o cluster tem um segredo (--secret ou a variável de ambiente abaixo).
SIGNATURE_HEADER = "X-Raft-Signature"
SECRET_ENV_VAR = "RAFT_SECRET"
CLIENT_TOKEN_ENV_VAR = "RAFT_CLIENT_TOKEN"

# Intervalo mínimo, em segundos, entre duas linhas de log sobre pedidos não
# autenticados vindos do mesmo endereço.
AUTH_FAILURE_LOG_INTERVAL = 60.0


# ============================================================================
# 2. Mensagens
# ============================================================================

@dataclass(slots=True)
class LogEntry:
    """Uma entrada do log: o comando e o termo do líder que a criou (Figura 2).

    `command` é None para a entrada vazia (no-op) que todo líder novo grava.
    """

    term: int
    index: int
    command: Optional[dict] = None
    # Tamanho aproximado do comando em JSON (veja command_size), calculado no
    # primeiro envio e guardado; -1 enquanto não foi calculado. Não vai ao disco.
    size: int = field(default=-1, compare=False, repr=False)


@dataclass
class RequestVote:
    """Pedido de voto de um candidato (§5.2)."""

    term: int
    candidate_id: str
    last_log_index: int
    last_log_term: int


@dataclass
class RequestVoteReply:
    term: int
    vote_granted: bool


@dataclass
class AppendEntries:
    """Replicação de entradas, e heartbeat quando `entries` está vazia (§5.3)."""

    term: int
    leader_id: str
    prev_log_index: int
    prev_log_term: int
    entries: list
    leader_commit: int


@dataclass
class AppendEntriesReply:
    """Resposta do seguidor.

    Em caso de sucesso, `match_index` é o índice da última entrada que este
    pedido verificou. Em caso de rejeição, `conflict_term` e `conflict_index`
    são a dica que deixa o líder recuar um termo inteiro de uma vez (§5.3,
    última parte): `conflict_term` é o termo da entrada do seguidor em
    `prev_log_index` (0 se ela não existe) e `conflict_index` é o primeiro
    índice do seguidor com esse termo (ou o índice logo após o fim do log).
    """

    term: int
    success: bool
    match_index: int = 0
    conflict_term: int = 0
    conflict_index: int = 0


class BadMessage(ValueError):
    """Mensagem recebida com formato inválido; o texto diz o que está errado."""


def _require_int(data: dict, name: str, minimum: int = 0) -> int:
    if name not in data:
        raise BadMessage(f"campo obrigatório ausente: {name!r}")
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadMessage(f"o campo {name!r} precisa ser um inteiro, veio {value!r}")
    if value < minimum or value > MAX_WIRE_INTEGER:
        raise BadMessage(
            f"o campo {name!r} está fora do intervalo [{minimum}, 2**53]: {value!r}")
    return value


def _require_bool(data: dict, name: str) -> bool:
    if name not in data:
        raise BadMessage(f"campo obrigatório ausente: {name!r}")
    value = data[name]
    if not isinstance(value, bool):
        raise BadMessage(f"o campo {name!r} precisa ser true ou false, veio {value!r}")
    return value


def _require_str(data: dict, name: str, max_length: int = MAX_ID_LENGTH) -> str:
    if name not in data:
        raise BadMessage(f"campo obrigatório ausente: {name!r}")
    value = data[name]
    if not isinstance(value, str) or not value:
        raise BadMessage(f"o campo {name!r} precisa ser um texto não vazio, veio {value!r}")
    if len(value) > max_length:
        raise BadMessage(f"o campo {name!r} passa de {max_length} caracteres")
    return value


def _require_object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise BadMessage(f"{what} precisa ser um objeto JSON, veio {type(value).__name__}")
    return value


def decode_entry(data: Any) -> LogEntry:
    data = _require_object(data, "cada entrada")
    command = data.get("command")
    if command is not None:
        check_command(command)
    return LogEntry(term=_require_int(data, "term", 1),
                    index=_require_int(data, "index", 1),
                    command=command)


def check_command(command: Any) -> None:
    """Confere o formato de um comando da máquina de estados (seção 5).

    Um comando que chega pela rede dentro de uma entrada passa por aqui antes de
    entrar no log, para que a máquina de estados nunca receba algo que não sabe
    aplicar.
    """
    if not isinstance(command, dict):
        raise BadMessage(f"o campo 'command' precisa ser um objeto ou null, veio {command!r}")
    if command.get("op") not in ("put", "delete"):
        raise BadMessage(f"comando com 'op' inválido: {command.get('op')!r} (use put ou delete)")
    key = command.get("key")
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH:
        raise BadMessage(f"comando com 'key' inválida: {key!r}")
    if command["op"] == "put" and "value" not in command:
        raise BadMessage("comando put sem 'value'")
    client_id, sequence = command.get("client_id"), command.get("sequence")
    if (client_id is None) != (sequence is None):
        raise BadMessage("client_id e sequence vêm juntos ou não vêm")
    if client_id is not None:
        if not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_ID_LENGTH:
            raise BadMessage(f"comando com 'client_id' inválido: {client_id!r}")
        if isinstance(sequence, bool) or not isinstance(sequence, int) or \
                not 1 <= sequence <= MAX_WIRE_INTEGER:
            raise BadMessage(f"comando com 'sequence' inválida: {sequence!r}")


def command_size(command: Optional[dict]) -> int:
    """Tamanho aproximado de um comando em JSON, em bytes.

    Conta só as chaves e os valores de texto de primeiro nível, sem serializar
    o comando: é barato o bastante para ser chamado a cada envio.
    """
    if not command:
        return 16
    size = 16
    for name, value in command.items():
        size += len(name) + 8
        if isinstance(value, str):
            size += len(value)
        elif isinstance(value, (dict, list)):
            size += len(json.dumps(value, ensure_ascii=False))
        else:
            size += 24
    return size


def encode_entry(entry: LogEntry) -> dict:
    return {"term": entry.term, "index": entry.index, "command": entry.command}


def decode_request_vote(data: Any) -> RequestVote:
    data = _require_object(data, "o corpo")
    return RequestVote(term=_require_int(data, "term", 1),
                       candidate_id=_require_str(data, "candidate_id"),
                       last_log_index=_require_int(data, "last_log_index"),
                       last_log_term=_require_int(data, "last_log_term"))


def decode_request_vote_reply(data: Any) -> RequestVoteReply:
    data = _require_object(data, "a resposta")
    return RequestVoteReply(term=_require_int(data, "term"),
                            vote_granted=_require_bool(data, "vote_granted"))


def decode_append_entries(data: Any) -> AppendEntries:
    """Decodifica um AppendEntries e confere a coerência das entradas.

    As entradas precisam vir com índices consecutivos a partir de
    `prev_log_index + 1` e com termos que não decrescem nem passam do termo do
    líder; qualquer outra forma é um pedido malformado, não um conflito.
    """
    data = _require_object(data, "o corpo")
    message = AppendEntries(term=_require_int(data, "term", 1),
                            leader_id=_require_str(data, "leader_id"),
                            prev_log_index=_require_int(data, "prev_log_index"),
                            prev_log_term=_require_int(data, "prev_log_term"),
                            entries=[],
                            leader_commit=_require_int(data, "leader_commit"))
    raw_entries = data.get("entries")
    if not isinstance(raw_entries, list):
        raise BadMessage(f"o campo 'entries' precisa ser uma lista, veio {raw_entries!r}")
    if message.prev_log_index == 0 and message.prev_log_term != 0:
        raise BadMessage("prev_log_term precisa ser 0 quando prev_log_index é 0")
    previous_term = message.prev_log_term
    for position, raw in enumerate(raw_entries):
        entry = decode_entry(raw)
        expected_index = message.prev_log_index + 1 + position
        if entry.index != expected_index:
            raise BadMessage(
                f"entrada na posição {position} tem índice {entry.index}, "
                f"esperado {expected_index}")
        if entry.term < previous_term or entry.term > message.term:
            raise BadMessage(
                f"entrada de índice {entry.index} tem termo {entry.term} fora da ordem "
                f"(anterior {previous_term}, termo do líder {message.term})")
        previous_term = entry.term
        message.entries.append(entry)
    return message


def decode_append_entries_reply(data: Any) -> AppendEntriesReply:
    data = _require_object(data, "a resposta")
    return AppendEntriesReply(term=_require_int(data, "term"),
                              success=_require_bool(data, "success"),
                              match_index=_require_int(data, "match_index"),
                              conflict_term=_require_int(data, "conflict_term"),
                              conflict_index=_require_int(data, "conflict_index"))


def encode_message(message: Any) -> dict:
    """Converte uma mensagem em um dicionário pronto para JSON."""
    data = dataclasses.asdict(message) if not isinstance(message, AppendEntries) else {
        "term": message.term,
        "leader_id": message.leader_id,
        "prev_log_index": message.prev_log_index,
        "prev_log_term": message.prev_log_term,
        "entries": [encode_entry(entry) for entry in message.entries],
        "leader_commit": message.leader_commit,
    }
    return data


# ============================================================================
# 3. Núcleo Raft
# ============================================================================
#
# O núcleo é só o algoritmo. Ele não abre sockets, não cria threads, não lê o
# relógio, não sorteia números e não mexe em arquivos: o tempo chega como
# argumento (`now`, em segundos), o sorteio vem de um `random.Random` recebido
# na construção, e cada chamada devolve um `Ready` dizendo o que deve
# acontecer em seguida. Quem chama (o nó real da seção 7, ou a simulação de
# raft_example.py) executa o `Ready` nesta ordem:
#
#   1. grava no disco: `log_writes` e, se `hard_state_changed`, o termo e o voto;
#      só então faz fsync;
#   2. envia `messages` e a resposta `reply`;
#   3. aplica `committed` à máquina de estados e responde aos clientes.
#
# A ordem importa: a Figura 2 exige que current_term, voted_for e o log estejam
# em armazenamento estável antes de responder a qualquer RPC.

class Role(enum.Enum):
    """Os três papéis de um servidor (§5.1).

    FOLLOWER só responde a pedidos; vira candidato quando o timeout de eleição
    passa sem notícias de um líder. CANDIDATE pede votos; vira líder com votos
    da maioria, ou seguidor ao ver um líder ou um termo maior. LEADER recebe os
    comandos dos clientes e replica o log; vira seguidor ao ver um termo maior.
    """

    FOLLOWER = "follower"
    CANDIDATE = "candidate"
    LEADER = "leader"


ROLE_NAMES_PT = {Role.FOLLOWER: "seguidor", Role.CANDIDATE: "candidato", Role.LEADER: "líder"}


def node_name(node_id: Any) -> str:
    """Nome de um nó nos logs: "n2" para o id "2", o próprio id se não é número,
    "-" para nenhum."""
    if node_id is None:
        return "-"
    text = str(node_id)
    return f"n{text}" if text.isdigit() else text


@dataclass
class LogLine:
    """Uma linha de log produzida pelo núcleo, com o termo e o papel da hora."""

    level: int
    text: str
    term: int
    role: Role


@dataclass
class Ready:
    """O que uma chamada ao núcleo pede ao seu executor (veja o topo da seção)."""

    # Operações no log, em ordem: ("truncate", índice) apaga o índice dado e
    # todos os seguintes; ("append", [entradas]) acrescenta ao fim.
    log_writes: list = field(default_factory=list)
    # current_term ou voted_for mudou e precisa ir para o disco.
    hard_state_changed: bool = False
    # Mensagens a enviar: pares (destino, mensagem).
    messages: list = field(default_factory=list)
    # Resposta ao RPC recebido, quando a chamada tratou um RPC.
    reply: Any = None
    # Entradas que acabaram de ficar comprometidas, em ordem, para aplicar.
    committed: list = field(default_factory=list)
    # Leituras confirmadas: pares (read_id, índice). A leitura pode ser servida
    # assim que a máquina de estados tiver aplicado até esse índice.
    reads_ready: list = field(default_factory=list)
    # Leituras que não podem mais ser confirmadas (o nó deixou de ser líder).
    reads_failed: list = field(default_factory=list)
    # Resultado de propose(): (índice, termo) da entrada nova, ou None se este
    # nó não é o líder.
    proposal: Optional[tuple] = None
    # Linhas de log, em ordem.
    lines: list = field(default_factory=list)


@dataclass
class InFlight:
    """O AppendEntries que o líder tem em trânsito para um seguidor."""

    request: AppendEntries
    sent_at: float
    read_round: int


@dataclass
class PendingRead:
    read_id: Any
    read_round: int


class RaftCore:
    """O algoritmo Raft de um servidor, sem nenhuma entrada ou saída própria.

    `node_id` é o nome deste servidor (vai em candidate_id, leader_id e
    voted_for). `peers` são as chaves com que o executor identifica os outros
    servidores: as URLs, no nó real, ou os ids, na simulação. O núcleo usa essas
    chaves só para endereçar mensagens e contar votos e réplicas.
    """

    def __init__(self, node_id: str, peers: list, *, rng: random.Random, now: float,
                 election_timeout_min: float = DEFAULT_ELECTION_TIMEOUT_MIN_MS / 1000,
                 election_timeout_max: float = DEFAULT_ELECTION_TIMEOUT_MAX_MS / 1000,
                 heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL_MS / 1000,
                 current_term: int = 0, voted_for: Optional[str] = None,
                 log: Optional[list] = None, check_quorum: bool = True):
        self.node_id = node_id
        self.peers = list(peers)
        # Nome de cada par nos logs; o executor pode trocar a chave (uma URL)
        # pelo id do par assim que o conhecer.
        self.peer_names: dict = {}
        self.rng = rng
        self.election_timeout_min = election_timeout_min
        self.election_timeout_max = election_timeout_max
        self.heartbeat_interval = heartbeat_interval
        # Um AppendEntries sem resposta por este tempo é dado como perdido e
        # reenviado; fica bem abaixo do timeout de eleição do seguidor.
        self.rpc_timeout = election_timeout_min / 2
        self.check_quorum = check_quorum

        # Estado persistente (Figura 2). Toda mudança em current_term ou
        # voted_for marca `hard_state_changed`, e toda mudança no log entra em
        # `log_writes`: o executor grava os dois antes de enviar qualquer
        # mensagem que dependa deles.
        self.current_term = current_term
        self.voted_for = voted_for
        # Um CompactLog vindo do disco passa a ser deste núcleo; qualquer outra
        # sequência de entradas é copiada para um CompactLog só em memória.
        if isinstance(log, CompactLog) and log.load is not None:
            self.log = log
        else:
            self.log = CompactLog(list(log or []))
        # Índice da primeira entrada de `self.log`. Hoje é sempre 1; com
        # snapshots (§7) o log passará a começar depois do snapshot.
        self.first_index = self.log.first_index
        # Um nó nunca volta com termo menor que o da última entrada do seu log:
        # se o termo persistido se perdeu, o log ainda prova que ele existiu.
        if self.log and self.log.term(-1) > self.current_term:
            self.current_term = self.log.term(-1)
            self.voted_for = None

        # Estado volátil de todos os servidores (Figura 2).
        self.commit_index = 0
        # Até onde as entradas já foram entregues ao executor em `committed`.
        self.last_applied = 0
        self.role = Role.FOLLOWER
        self.leader_id: Optional[str] = None
        self.leader_key: Any = None
        self.election_deadline = 0.0
        self._reset_election_timer(now)

        # Estado volátil do candidato: quem já votou em nós neste termo. É um
        # conjunto, para que um voto repetido conte uma vez só.
        self.votes_granted: set = set()

        # Estado volátil do líder (Figura 2), refeito a cada eleição.
        self.next_index: dict = {}
        self.match_index: dict = {}
        self.in_flight: dict = {}
        self.last_sent: dict = {}
        self.last_ack: dict = {}
        self.acked_round: dict = {}
        self.read_round = 0
        self.pending_reads: list = []
        self.quorum_check_at = 0.0

        self._ready = Ready()

    # ---- consultas ao log --------------------------------------------------

    @property
    def last_log_index(self) -> int:
        return self.first_index - 1 + len(self.log)

    @property
    def last_log_term(self) -> int:
        return self.log.term(-1) if self.log else 0

    def term_at(self, index: int) -> Optional[int]:
        """Termo da entrada `index`, 0 para o índice 0, None se ela não existe."""
        if index == 0:
            return 0
        if index < self.first_index or index > self.last_log_index:
            return None
        return self.log.term(index - self.first_index)

    def entry_at(self, index: int) -> LogEntry:
        return self.log[index - self.first_index]

    def _peer_name(self, peer: Any) -> str:
        return node_name(self.peer_names.get(peer, peer))

    def majority(self) -> int:
        return (len(self.peers) + 1) // 2 + 1

    # ---- saída -------------------------------------------------------------

    def _take_ready(self) -> Ready:
        ready, self._ready = self._ready, Ready()
        return ready

    def _log(self, level: int, text: str) -> None:
        self._ready.lines.append(LogLine(level, text, self.current_term, self.role))

    def _log_state(self) -> None:
        """Registra a linha de estado que acompanha cada mudança de papel."""
        self._log(logging.INFO,
                  f"estado: termo={self.current_term} papel={ROLE_NAMES_PT[self.role]} "
                  f"líder={node_name(self.leader_id)} voto={node_name(self.voted_for)} "
                  f"commit={self.commit_index} último_índice={self.last_log_index}")

    # ---- transições de papel -----------------------------------------------

    def _reset_election_timer(self, now: float) -> None:
        # Timeouts sorteados num intervalo (§5.2) fazem com que, quase sempre,
        # um só seguidor acorde primeiro e vença antes que os outros tentem.
        self.election_deadline = now + self.rng.uniform(self.election_timeout_min,
                                                        self.election_timeout_max)

    def _set_term(self, term: int) -> None:
        self.current_term = term
        self.voted_for = None
        self._ready.hard_state_changed = True

    def _become_follower(self, term: int, now: float, reason: str) -> None:
        """Passa a seguidor no termo dado (regra de todos os servidores, §5.1)."""
        previous_role = self.role
        if term > self.current_term:
            self._set_term(term)
            self.leader_id = None
            self.leader_key = None
        self.role = Role.FOLLOWER
        if previous_role == Role.LEADER:
            self._fail_pending_reads()
            self._log(logging.WARNING, f"deixei de ser líder ({reason})")
        elif previous_role == Role.CANDIDATE:
            self._log(logging.INFO, f"desisti da candidatura ({reason})")
        else:
            self._log(logging.INFO, f"passei para o termo {self.current_term} ({reason})")
        if previous_role != Role.FOLLOWER:
            self._reset_election_timer(now)
        self._log_state()

    def _become_candidate(self, now: float) -> None:
        """Inicia uma eleição: novo termo, voto em si mesmo, pedidos de voto (§5.2)."""
        self._set_term(self.current_term + 1)
        self.role = Role.CANDIDATE
        self.voted_for = self.node_id
        self.leader_id = None
        self.leader_key = None
        self.votes_granted = {self.node_id}
        self._reset_election_timer(now)
        self._log(logging.INFO,
                  f"iniciando eleição para o termo {self.current_term} "
                  f"(nenhuma notícia de líder dentro do timeout de eleição)")
        self._log_state()
        request = RequestVote(term=self.current_term, candidate_id=self.node_id,
                              last_log_index=self.last_log_index,
                              last_log_term=self.last_log_term)
        for peer in self.peers:
            self._ready.messages.append((peer, request))
        self._maybe_win_election(now)

    def _maybe_win_election(self, now: float) -> None:
        if len(self.votes_granted) >= self.majority():
            self._become_leader(now)

    def _become_leader(self, now: float) -> None:
        self.role = Role.LEADER
        self.leader_id = self.node_id
        self.leader_key = None
        self.next_index = {peer: self.last_log_index + 1 for peer in self.peers}
        self.match_index = {peer: 0 for peer in self.peers}
        self.in_flight = {peer: None for peer in self.peers}
        self.last_sent = {peer: now for peer in self.peers}
        self.last_ack = {peer: now for peer in self.peers}
        self.acked_round = {peer: 0 for peer in self.peers}
        self.read_round = 0
        self.pending_reads = []
        self.quorum_check_at = now + self.election_timeout_max
        votes = ", ".join(sorted(self._peer_name(voter) for voter in self.votes_granted))
        self._log(logging.WARNING,
                  f"virei líder do termo {self.current_term} (votos de: {votes})")
        self._log_state()
        # Um líder só sabe quais entradas estão comprometidas depois de
        # comprometer uma entrada do próprio termo (§5.4.2, §8). A entrada vazia
        # faz isso logo, sem esperar pelo próximo comando de um cliente.
        self._append_to_own_log(None)
        for peer in self.peers:
            self._send_append(peer, now)
        self._advance_commit_index()

    # ---- regra de todos os servidores --------------------------------------

    def _observe_term(self, term: int, now: float, source: str) -> None:
        """Aplica a regra de todos os servidores (§5.1) antes de tratar a mensagem.

        Um termo maior em qualquer pedido ou resposta prova que este nó está
        atrasado: ele adota o termo e vira seguidor.
        """
        if term > self.current_term:
            self._become_follower(term, now, f"{source} tem termo {term}, maior que o meu")

    # ---- RequestVote -------------------------------------------------------

    def handle_request_vote(self, request: RequestVote, now: float) -> Ready:
        """Trata um pedido de voto como o receptor da Figura 2."""
        self._observe_term(request.term, now,
                           f"pedido de voto de {node_name(request.candidate_id)}")
        reply = RequestVoteReply(term=self.current_term, vote_granted=False)
        self._ready.reply = reply
        candidate = node_name(request.candidate_id)

        # 1. Nega o voto se o termo do candidato é menor que o atual (§5.1).
        if request.term < self.current_term:
            # Em DEBUG: pedidos de termos antigos são rotina (respostas atrasadas)
            # e, sem segredo, qualquer um pode mandá-los aos milhares.
            self._log(logging.DEBUG,
                      f"voto negado a {candidate} (termo {request.term} do candidato "
                      f"é menor que o meu, §5.1)")
            return self._take_ready()

        # 2. Um voto por termo, por ordem de chegada (§5.2)...
        if self.voted_for is not None and self.voted_for != request.candidate_id:
            self._log(logging.INFO,
                      f"voto negado a {candidate} (já votei em {node_name(self.voted_for)} "
                      f"neste termo, §5.2)")
            return self._take_ready()

        # ...e só para um candidato cujo log esteja pelo menos tão atualizado
        # quanto o meu (§5.4.1); assim o líder eleito tem todas as entradas
        # comprometidas.
        if not self._is_up_to_date(request.last_log_term, request.last_log_index):
            self._log(logging.INFO,
                      f"voto negado a {candidate} (meu log é mais atualizado: "
                      f"último termo {self.last_log_term} índice {self.last_log_index}, "
                      f"o dele termo {request.last_log_term} índice "
                      f"{request.last_log_index}, §5.4.1)")
            return self._take_ready()

        if self.voted_for != request.candidate_id:
            self.voted_for = request.candidate_id
            self._ready.hard_state_changed = True
        reply.vote_granted = True
        # Conceder um voto reinicia o timer de eleição; negar, não (um pedido
        # negado não deve impedir este nó, talvez o mais atualizado, de se
        # candidatar).
        self._reset_election_timer(now)
        self._log(logging.INFO, f"voto concedido a {candidate} no termo {self.current_term}")
        return self._take_ready()

    def _is_up_to_date(self, last_log_term: int, last_log_index: int) -> bool:
        """Diz se um log que termina em (termo, índice) é pelo menos tão atualizado
        quanto o meu (§5.4.1): vence o último termo maior; com termos iguais,
        vence o log mais comprido."""
        if last_log_term != self.last_log_term:
            return last_log_term > self.last_log_term
        return last_log_index >= self.last_log_index

    def handle_request_vote_reply(self, peer: Any, request: RequestVote,
                                  reply: RequestVoteReply, now: float) -> Ready:
        """Conta um voto recebido. `request` é o pedido ao qual ele responde."""
        self._observe_term(reply.term, now, f"resposta de voto de {self._peer_name(peer)}")
        # Só contam respostas a um pedido deste termo enquanto ainda somos
        # candidatos: um voto atrasado de uma eleição anterior não vale agora.
        if (self.role != Role.CANDIDATE or request.term != self.current_term
                or reply.term != self.current_term):
            self._log(logging.DEBUG, f"resposta de voto de {self._peer_name(peer)} ignorada (termo antigo)")
            return self._take_ready()
        if reply.vote_granted:
            self.votes_granted.add(peer)
            self._log(logging.INFO,
                      f"voto recebido de {self._peer_name(peer)} ({len(self.votes_granted)} de "
                      f"{self.majority()} necessários)")
            self._maybe_win_election(now)
        else:
            self._log(logging.INFO, f"{self._peer_name(peer)} negou o voto no termo {self.current_term}")
        return self._take_ready()

    # ---- AppendEntries -----------------------------------------------------

    def handle_append_entries(self, sender: Any, request: AppendEntries, now: float) -> Ready:
        """Trata um AppendEntries como o receptor da Figura 2.

        `sender` é a chave do líder que enviou o pedido; o executor a usa para
        encaminhar clientes ao líder.
        """
        self._observe_term(request.term, now, f"AppendEntries de {node_name(request.leader_id)}")
        reply = AppendEntriesReply(term=self.current_term, success=False)
        self._ready.reply = reply

        # 1. Rejeita se o termo do líder é menor que o atual (§5.1). O timer de
        #    eleição não é reiniciado: esse líder já foi substituído.
        if request.term < self.current_term:
            self._log(logging.DEBUG,
                      f"AppendEntries de {node_name(request.leader_id)} rejeitado (termo "
                      f"{request.term} menor que o meu)")
            return self._take_ready()

        # O pedido vem do líder legítimo deste termo: um candidato desiste, e o
        # timer de eleição recomeça.
        if self.role == Role.CANDIDATE:
            self._become_follower(self.current_term, now,
                                  f"{node_name(request.leader_id)} já é líder do termo {request.term}")
        elif self.role == Role.LEADER:
            # Dois líderes no mesmo termo violariam a segurança da eleição
            # (§5.2); se acontecer, é um defeito, e o pedido é recusado.
            self._log(logging.ERROR,
                      f"AppendEntries de {node_name(request.leader_id)} no meu próprio termo de "
                      f"liderança; recusado (dois líderes no mesmo termo)")
            return self._take_ready()
        if self.leader_id != request.leader_id:
            self.leader_id = request.leader_id
            self._log(logging.INFO, f"reconheço {node_name(request.leader_id)} como líder do termo "
                                    f"{self.current_term}")
        self.leader_key = sender
        self._reset_election_timer(now)

        # 2. Rejeita se o log não tem, em prev_log_index, uma entrada com termo
        #    prev_log_term (§5.3). A dica permite ao líder pular o termo inteiro.
        prev_index, prev_term = request.prev_log_index, request.prev_log_term
        if prev_index > self.last_log_index:
            reply.conflict_index = self.last_log_index + 1
            self._log(logging.DEBUG,
                      f"AppendEntries rejeitado (não tenho o índice {prev_index}; "
                      f"meu log termina em {self.last_log_index})")
            return self._take_ready()
        local_term = self.term_at(prev_index)
        if local_term != prev_term:
            reply.conflict_term = local_term
            first = prev_index
            while first - 1 > self.commit_index and self.term_at(first - 1) == local_term:
                first -= 1
            reply.conflict_index = first
            self._log(logging.DEBUG,
                      f"AppendEntries rejeitado (no índice {prev_index} tenho termo "
                      f"{local_term}, o líder tem {prev_term})")
            return self._take_ready()

        # 3. Se uma entrada existente conflita com uma nova (mesmo índice, termo
        #    diferente), apaga essa entrada e todas as seguintes (§5.3).
        # 4. Acrescenta as entradas novas que ainda não estão no log.
        # Só um conflito real apaga: um pedido repetido, atrasado ou fora de
        # ordem, mais curto que o log, não remove nada, porque as entradas que
        # ele não traz podem já ter sido contadas pelo líder como replicadas.
        new_entries = []
        for position, entry in enumerate(request.entries):
            local = self.term_at(entry.index)
            if local is None:
                new_entries = request.entries[position:]
                break
            if local != entry.term:
                if entry.index <= self.commit_index:
                    self._log(logging.ERROR,
                              f"AppendEntries tenta substituir a entrada comprometida "
                              f"{entry.index}; recusado (isso violaria a segurança)")
                    return self._take_ready()
                removed = self.last_log_index - entry.index + 1
                self._truncate_log(entry.index)
                self._log(logging.WARNING,
                          f"conflito no índice {entry.index} (meu termo {local}, do "
                          f"líder {entry.term}): {removed} entrada(s) removida(s) do fim "
                          f"do log, §5.3")
                new_entries = request.entries[position:]
                break
        if new_entries:
            self.log.extend(new_entries)
            self._ready.log_writes.append(("append", list(new_entries)))

        # 5. Avança commit_index até min(leader_commit, índice da última entrada
        #    que este pedido verificou). Entradas além disso podem ser restos de
        #    outro líder que este pedido não conferiu.
        last_checked = prev_index + len(request.entries)
        if request.leader_commit > self.commit_index:
            new_commit = min(request.leader_commit, last_checked)
            if new_commit > self.commit_index:
                self.commit_index = new_commit
                self._emit_committed()

        reply.success = True
        reply.match_index = last_checked
        if request.entries:
            self._log(logging.DEBUG,
                      f"AppendEntries aceito: {len(request.entries)} entrada(s) até o "
                      f"índice {last_checked}")
        else:
            self._log(logging.DEBUG, f"heartbeat de {node_name(request.leader_id)}")
        return self._take_ready()

    def _truncate_log(self, index: int) -> None:
        del self.log[index - self.first_index:]
        self._ready.log_writes.append(("truncate", index))

    def _append_to_own_log(self, command: Optional[dict]) -> LogEntry:
        entry = LogEntry(term=self.current_term, index=self.last_log_index + 1,
                         command=command)
        self.log.append(entry)
        if self._ready.log_writes and self._ready.log_writes[-1][0] == "append":
            self._ready.log_writes[-1][1].append(entry)
        else:
            self._ready.log_writes.append(("append", [entry]))
        return entry

    def _send_append(self, peer: Any, now: float) -> None:
        """Envia a `peer` as entradas a partir de next_index (ou só um heartbeat)."""
        next_index = self.next_index[peer]
        prev_index = next_index - 1
        start = next_index - self.first_index
        entries = self.log[start:start + MAX_ENTRIES_PER_APPEND]
        total = 0
        for position, entry in enumerate(entries):
            if entry.size < 0:
                entry.size = command_size(entry.command)
            total += entry.size
            if total > MAX_APPEND_BYTES and position > 0:
                del entries[position:]
                break
        request = AppendEntries(term=self.current_term, leader_id=self.node_id,
                                prev_log_index=prev_index,
                                prev_log_term=self.term_at(prev_index),
                                entries=entries, leader_commit=self.commit_index)
        self.in_flight[peer] = InFlight(request, now, self.read_round)
        self.last_sent[peer] = now
        self._ready.messages.append((peer, request))

    def handle_append_entries_reply(self, peer: Any, request: AppendEntries,
                                    reply: AppendEntriesReply, now: float) -> Ready:
        """Trata a resposta de `peer` ao AppendEntries `request`."""
        self._observe_term(reply.term, now, f"resposta de {self._peer_name(peer)}")
        # Respostas a pedidos de outro termo são ignoradas: o estado de
        # replicação que elas descrevem não vale mais.
        if (self.role != Role.LEADER or request.term != self.current_term
                or reply.term != self.current_term):
            return self._take_ready()

        in_flight = self.in_flight.get(peer)
        answers_current = in_flight is not None and in_flight.request is request
        if answers_current:
            self.in_flight[peer] = None
            # A resposta prova que `peer` aceitava este nó como líder depois do
            # envio; isso confirma as leituras registradas até aquela rodada.
            self.acked_round[peer] = max(self.acked_round[peer], in_flight.read_round)
        self.last_ack[peer] = now

        if reply.success:
            match = request.prev_log_index + len(request.entries)
            if match > self.match_index[peer]:
                self.match_index[peer] = match
            self.next_index[peer] = max(self.next_index[peer], self.match_index[peer] + 1)
            self._advance_commit_index()
        else:
            # Uma rejeição só move next_index se responde à sondagem atual
            # (prev_log_index == next_index - 1). Uma rejeição atrasada de uma
            # sondagem anterior faria next_index recuar de novo sem motivo.
            if request.prev_log_index != self.next_index[peer] - 1:
                self._log(logging.DEBUG, f"rejeição antiga de {self._peer_name(peer)} ignorada")
            elif request.prev_log_index <= self.match_index[peer]:
                self._log(logging.DEBUG, f"rejeição de {self._peer_name(peer)} abaixo de match_index ignorada")
            else:
                self.next_index[peer] = self._next_index_after_conflict(peer, request, reply)
                self._log(logging.DEBUG,
                          f"{self._peer_name(peer)} rejeitou prev_log_index {request.prev_log_index}; "
                          f"next_index recua para {self.next_index[peer]}")

        self._check_reads()
        more_entries = self.next_index[peer] <= self.last_log_index
        read_waiting = bool(self.pending_reads) and \
            self.pending_reads[-1].read_round > self.acked_round[peer]
        if self.role == Role.LEADER and self.in_flight[peer] is None and \
                (more_entries or read_waiting or not reply.success):
            self._send_append(peer, now)
        return self._take_ready()

    def _next_index_after_conflict(self, peer: Any, request: AppendEntries,
                                   reply: AppendEntriesReply) -> int:
        """Escolhe o novo next_index a partir da dica do seguidor (§5.3).

        Se o líder tem entradas do termo em conflito, recomeça logo depois da
        última delas; senão, pula para o primeiro índice do seguidor com aquele
        termo. O resultado fica sempre entre match_index + 1 e prev_log_index,
        logo nunca abaixo de 1 e nunca para frente numa rejeição.
        """
        candidate = reply.conflict_index
        if reply.conflict_term:
            index = min(request.prev_log_index, self.last_log_index)
            while index >= self.first_index and self.term_at(index) > reply.conflict_term:
                index -= 1
            if index >= self.first_index and self.term_at(index) == reply.conflict_term:
                candidate = index + 1
        lowest = self.match_index[peer] + 1
        highest = request.prev_log_index
        return max(lowest, min(candidate, highest))

    def _advance_commit_index(self) -> None:
        """Compromete o maior índice replicado na maioria (§5.3, §5.4.2).

        Só conta réplicas de entradas do termo atual: uma entrada de termo
        anterior pode estar na maioria e ainda assim ser apagada por um líder
        futuro (Figura 8). Ela fica comprometida, de forma indireta, quando uma
        entrada do termo atual depois dela é comprometida.
        """
        if self.role != Role.LEADER:
            return
        replicated = sorted([self.last_log_index] + list(self.match_index.values()),
                            reverse=True)
        candidate = replicated[self.majority() - 1]
        if candidate > self.commit_index and self.term_at(candidate) == self.current_term:
            self.commit_index = candidate
            self._emit_committed()
            self._check_reads()

    def _emit_committed(self) -> None:
        if self.commit_index > self.last_applied:
            start = self.last_applied + 1 - self.first_index
            stop = self.commit_index + 1 - self.first_index
            self._ready.committed.extend(self.log[start:stop])
            self.last_applied = self.commit_index

    def handle_send_failure(self, peer: Any, request: Any, now: float) -> Ready:
        """Registra que `request` não chegou a `peer`; ele será reenviado no
        próximo heartbeat."""
        if self.role == Role.LEADER and isinstance(request, AppendEntries):
            in_flight = self.in_flight.get(peer)
            if in_flight is not None and in_flight.request is request:
                self.in_flight[peer] = None
        return self._take_ready()

    # ---- clientes ----------------------------------------------------------

    def propose(self, command: dict, now: float) -> Ready:
        """Acrescenta um comando de cliente ao log, se este nó é o líder.

        `Ready.proposal` traz (índice, termo) da entrada; o comando terá sido
        aplicado quando a entrada com esse índice *e esse termo* sair em
        `committed`. Se sair outra entrada naquele índice, o comando se perdeu
        numa troca de líder.
        """
        if self.role != Role.LEADER:
            return self._take_ready()
        entry = self._append_to_own_log(command)
        self._ready.proposal = (entry.index, entry.term)
        for peer in self.peers:
            if self.in_flight[peer] is None:
                self._send_append(peer, now)
        # Com um só nó a própria cópia já é maioria. O executor só aplica e
        # responde depois de gravar a entrada no disco, então isso é seguro.
        self._advance_commit_index()
        return self._take_ready()

    def request_read(self, read_id: Any, now: float) -> Ready:
        """Registra uma leitura linearizável pelo método ReadIndex (§6.4 da tese).

        A leitura é confirmada quando (1) o líder já comprometeu uma entrada do
        próprio termo, e assim conhece o commit mais recente, e (2) a maioria
        respondeu a um AppendEntries enviado depois do registro, o que prova que
        nenhum líder mais novo existia naquele momento. Um líder deposto ou
        isolado nunca chega a (2), então nunca responde com dados velhos.
        """
        if self.role != Role.LEADER:
            self._ready.reads_failed.append(read_id)
            return self._take_ready()
        self.read_round += 1
        self.pending_reads.append(PendingRead(read_id, self.read_round))
        for peer in self.peers:
            if self.in_flight[peer] is None:
                self._send_append(peer, now)
        self._check_reads()
        return self._take_ready()

    def _check_reads(self) -> None:
        if not self.pending_reads or self.role != Role.LEADER:
            return
        if self.term_at(self.commit_index) != self.current_term:
            return
        confirmed = 0
        for position, read in enumerate(self.pending_reads):
            acks = 1 + sum(1 for peer in self.peers
                           if self.acked_round[peer] >= read.read_round)
            if acks < self.majority():
                break
            self._ready.reads_ready.append((read.read_id, self.commit_index))
            confirmed = position + 1
        del self.pending_reads[:confirmed]

    def _fail_pending_reads(self) -> None:
        self._ready.reads_failed.extend(read.read_id for read in self.pending_reads)
        self.pending_reads = []

    # ---- tempo -------------------------------------------------------------

    def tick(self, now: float) -> Ready:
        """Avança o relógio: timeouts de eleição, heartbeats e reenvios."""
        if self.role == Role.LEADER:
            self._tick_leader(now)
        elif now >= self.election_deadline:
            self._become_candidate(now)
        return self._take_ready()

    def _tick_leader(self, now: float) -> None:
        # Cada prazo é comparado com a mesma soma que next_deadline() devolve.
        # Com `now - sent_at >= timeout`, o arredondamento de ponto flutuante
        # podia fazer o tick no prazo exato não fazer nada, e quem chama
        # tick(next_deadline()) voltaria ao mesmo instante sem fim.
        for peer in self.peers:
            in_flight = self.in_flight[peer]
            if in_flight is not None and now >= in_flight.sent_at + self.rpc_timeout:
                self.in_flight[peer] = None
                in_flight = None
            if in_flight is None and now >= self.last_sent[peer] + self.heartbeat_interval:
                self._send_append(peer, now)
        # Check-quorum: um líder que não ouviu a maioria durante um timeout de
        # eleição inteiro provavelmente está isolado; ele deixa o cargo para que
        # clientes não fiquem esperando por ele.
        if self.check_quorum and self.peers and now >= self.quorum_check_at:
            heard = 1 + sum(1 for peer in self.peers
                            if now - self.last_ack[peer] < self.election_timeout_max)
            if heard < self.majority():
                self.leader_id = None
                self._become_follower(self.current_term, now,
                                      f"só ouvi {heard} de {len(self.peers) + 1} nós "
                                      f"no último timeout de eleição")
                return
            self.quorum_check_at = now + self.election_timeout_max

    def next_deadline(self) -> float:
        """O próximo instante em que tick() tem algo a fazer."""
        if self.role != Role.LEADER:
            return self.election_deadline
        deadlines = [self.quorum_check_at] if self.check_quorum and self.peers else []
        for peer in self.peers:
            in_flight = self.in_flight[peer]
            if in_flight is not None:
                deadlines.append(in_flight.sent_at + self.rpc_timeout)
            else:
                deadlines.append(self.last_sent[peer] + self.heartbeat_interval)
        return min(deadlines) if deadlines else float("inf")


# ============================================================================
# 4. Armazenamento
# ============================================================================
#
# Na pasta de dados de cada nó:
#
#   estado.json  current_term e voted_for. Cada gravação escreve um arquivo
#                temporário, faz fsync, renomeia por cima do antigo e faz fsync
#                da pasta: uma queda deixa o estado antigo ou o novo, nunca um
#                termo sem o voto correspondente.
#   log.bin      o log, um registro por entrada, só acrescentado no fim (ou
#                cortado num conflito). Cada registro é:
#                  4 bytes  b"RLOG"
#                  4 bytes  tamanho do conteúdo (big-endian)
#                  4 bytes  CRC-32 do tamanho e do conteúdo
#                  N bytes  a entrada em JSON: {"term", "index", "command"}
#
# Uma queda no meio de uma gravação deixa, no máximo, o último registro pela
# metade: ele nunca passou por fsync, então nunca foi confirmado a ninguém, e é
# cortado na partida. Um registro danificado que não é o último significa disco
# corrompido; o nó para com um erro que nomeia o arquivo e a posição, em vez de
# rodar com dados errados.

RECORD_MAGIC = b"RLOG"
RECORD_HEADER = struct.Struct(">4sII")
MAX_RECORD_BYTES = 64 * 1024 * 1024


class CompactLog:
    """O log de um nó em memória, com os comandos antigos só no disco.

    O termo de cada entrada fica num array (8 bytes por entrada). A entrada
    inteira, com o comando, fica em memória só para as que ainda não foram
    soltas por release(); as soltas são lidas de volta com
    `load(primeiro_índice, último_índice)` quando alguém as pede, como um
    seguidor atrasado ou a reaplicação depois de reiniciar. Sem `load`, nada é
    solto e o log é uma lista comum (a simulação usa assim).

    O núcleo usa o log como uma lista: len, log[i], log[i:j], append, extend e
    del log[i:], mais term(i), que não lê o disco.
    """

    def __init__(self, entries: list = (), *, first_index: int = 1,
                 terms: Optional[array.array] = None,
                 load: Optional[Callable[[int, int], list]] = None):
        entries = list(entries)
        self.first_index = entries[0].index if entries else first_index
        self.terms = array.array("q", [entry.term for entry in entries]
                                 if terms is None else terms)
        self.load = load
        # Invariante: as entradas de índice <= _released estão só no disco; as
        # de índice maior estão todas em _cached.
        self._released = self.first_index - 1 + (len(self.terms) if terms is not None else 0)
        self._cached: dict = {entry.index: entry for entry in entries}

    def __len__(self) -> int:
        return len(self.terms)

    def __bool__(self) -> bool:
        return bool(self.terms)

    def __iter__(self):
        return iter(self[0:len(self.terms)])

    def __eq__(self, other: Any) -> bool:
        return list(self) == list(other)

    def term(self, position: int) -> int:
        return self.terms[position]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self.terms))
            if step != 1:
                raise ValueError("CompactLog só aceita fatias contínuas")
            first, last = self.first_index + start, self.first_index + stop - 1
            if first > last:
                return []
            entries = []
            if first <= self._released:
                entries = self.load(first, min(last, self._released))
                first = self._released + 1
            entries.extend(self._cached[index] for index in range(first, last + 1))
            return entries
        position = key + len(self.terms) if key < 0 else key
        if not 0 <= position < len(self.terms):
            raise IndexError("índice fora do log")
        index = self.first_index + position
        if index <= self._released:
            return self.load(index, index)[0]
        return self._cached[index]

    def append(self, entry: LogEntry) -> None:
        self.terms.append(entry.term)
        self._cached[entry.index] = entry

    def extend(self, entries: list) -> None:
        for entry in entries:
            self.append(entry)

    def __delitem__(self, key: Any) -> None:
        if not isinstance(key, slice) or key.stop is not None or key.step is not None:
            raise ValueError("CompactLog só apaga do fim: del log[i:]")
        start = max(0, key.start or 0)
        for index in range(max(self.first_index + start, self._released + 1),
                           self.first_index + len(self.terms)):
            del self._cached[index]
        del self.terms[start:]
        self._released = min(self._released, self.first_index + start - 1)

    def release(self, up_to: int) -> None:
        """Solta da memória os comandos das entradas até o índice `up_to`."""
        if self.load is None:
            return
        up_to = min(up_to, self.first_index + len(self.terms) - 1)
        for index in range(self._released + 1, up_to + 1):
            del self._cached[index]
        self._released = max(self._released, up_to)


class StorageError(Exception):
    """Dados em disco ilegíveis ou inconsistentes; o texto nomeia o arquivo."""


def _fsync_folder(folder: str) -> None:
    """Grava no disco a entrada de um arquivo recém-renomeado na pasta."""
    if os.name == "nt":
        # NOTE: o Windows não abre pastas com os.open; lá o rename fica sem
        # esse fsync, e uma queda logo depois pode desfazê-lo.
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def encode_record(entry: LogEntry) -> bytes:
    payload = json.dumps(encode_entry(entry), separators=(",", ":"),
                         ensure_ascii=False).encode("utf-8")
    length = struct.pack(">I", len(payload))
    checksum = zlib.crc32(length + payload)
    return RECORD_HEADER.pack(RECORD_MAGIC, len(payload), checksum) + payload


def _parse_record(data: bytes, offset: int) -> Optional[tuple]:
    """Lê o registro que começa em `offset`; devolve (entrada, fim) ou None se
    ele está incompleto ou não confere."""
    if len(data) - offset < RECORD_HEADER.size:
        return None
    magic, length, checksum = RECORD_HEADER.unpack_from(data, offset)
    if magic != RECORD_MAGIC or length > MAX_RECORD_BYTES:
        return None
    end = offset + RECORD_HEADER.size + length
    if end > len(data):
        return None
    payload = data[offset + RECORD_HEADER.size:end]
    if zlib.crc32(struct.pack(">I", length) + payload) != checksum:
        return None
    try:
        entry = decode_entry(json.loads(payload.decode("utf-8")))
    except (ValueError, BadMessage):
        return None
    return entry, end


def _has_valid_record_after(data: bytes, offset: int) -> bool:
    """Procura um registro íntegro depois de `offset`.

    Se existe um, o dano em `offset` não é um fim de arquivo cortado por uma
    queda, e sim corrupção no meio do log.
    """
    position = data.find(RECORD_MAGIC, offset + 1)
    while position != -1:
        if _parse_record(data, position) is not None:
            return True
        position = data.find(RECORD_MAGIC, position + 1)
    return False


class DiskStorage:
    """Estado persistente de um nó numa pasta (formato no topo da seção)."""

    def __init__(self, folder: str, log: Callable[[int, str], None]):
        self.folder = folder
        self.state_path = os.path.join(folder, "estado.json")
        self.log_path = os.path.join(folder, "log.bin")
        self._log = log
        self._lock_file = None
        self._log_file = None
        self._read_fd: Optional[int] = None
        # Posição no arquivo em que começa cada registro, para cortar o log num
        # índice sem reler o arquivo.
        self._offsets = array.array("q")
        self._first_index = 1
        self._dirty = False

    def open(self) -> tuple:
        """Abre a pasta e devolve (current_term, voted_for, log).

        O log é um CompactLog: só os termos ficam em memória, e os comandos são
        lidos do arquivo quando alguém os pede.
        """
        os.makedirs(self.folder, exist_ok=True)
        self._acquire_lock()
        term, voted_for = self._load_state()
        terms = self._load_log()
        self._log_file = open(self.log_path, "ab")
        # O arquivo de escrita só acrescenta; as leituras usam um descritor próprio.
        self._read_fd = os.open(self.log_path, os.O_RDONLY)
        log = CompactLog(first_index=self._first_index, terms=terms, load=self.read_entries)
        return term, voted_for, log

    def read_entries(self, first: int, last: int) -> list:
        """Lê do arquivo as entradas de índice `first` a `last`, inclusive.

        Funciona também depois de close(), para ferramentas que abrem a pasta
        só para ler o log.
        """
        start = self._offsets[first - self._first_index]
        following = last + 1 - self._first_index
        if self._log_file is not None:
            self._log_file.flush()
        if following < len(self._offsets):
            end = self._offsets[following]
        else:
            end = os.path.getsize(self.log_path)
        if self._read_fd is not None:
            data = os.pread(self._read_fd, end - start, start)
        else:
            with open(self.log_path, "rb") as file:
                file.seek(start)
                data = file.read(end - start)
        entries = []
        offset = 0
        while offset < len(data):
            parsed = _parse_record(data, offset)
            if parsed is None:
                raise StorageError(f"o arquivo {self.log_path} mudou ou está corrompido na "
                                   f"posição {start + offset}; o nó parou para não rodar "
                                   f"com um log errado")
            entry, offset = parsed
            entries.append(entry)
        if len(entries) != last - first + 1 or entries[0].index != first:
            raise StorageError(f"o arquivo {self.log_path} não tem as entradas {first} a "
                               f"{last} onde o índice em memória diz")
        return entries

    def _acquire_lock(self) -> None:
        try:
            import fcntl
        except ImportError:
            # NOTE: o Windows não tem fcntl, então lá nada impede dois nós de
            # abrirem a mesma pasta de dados.
            return
        self._lock_file = open(os.path.join(self.folder, ".trava"), "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise StorageError(
                f"a pasta de dados {self.folder} já está em uso por outro nó; "
                f"cada nó precisa da sua própria pasta (use --data-dir)") from None

    def _load_state(self) -> tuple:
        try:
            with open(self.state_path, "rb") as file:
                raw = file.read()
        except FileNotFoundError:
            return 0, None
        try:
            data = json.loads(raw.decode("utf-8"))
            term = data["current_term"]
            voted_for = data["voted_for"]
            if isinstance(term, bool) or not isinstance(term, int) or term < 0:
                raise ValueError(f"current_term inválido: {term!r}")
            if voted_for is not None and not isinstance(voted_for, str):
                raise ValueError(f"voted_for inválido: {voted_for!r}")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise StorageError(
                f"o arquivo {self.state_path} está corrompido ({error}); o nó não "
                f"pode votar com segurança sem ele. Se o nó pode perder o estado, "
                f"apague a pasta {self.folder} e o nó voltará vazio") from None
        return term, voted_for

    def _load_log(self) -> array.array:
        """Confere o arquivo do log e devolve só os termos das entradas.

        Cada registro é decodificado para a conferência e logo descartado; o
        comando fica no disco até alguém pedi-lo (veja CompactLog).
        """
        terms = array.array("q")
        try:
            with open(self.log_path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return terms
        previous: Optional[LogEntry] = None
        offset = 0
        while offset < len(data):
            parsed = _parse_record(data, offset)
            if parsed is None:
                if _has_valid_record_after(data, offset):
                    raise StorageError(
                        f"o arquivo {self.log_path} está corrompido na posição {offset} "
                        f"(registro {len(terms) + 1}), com registros íntegros depois "
                        f"dele; o nó parou para não rodar com um log errado. Apague a "
                        f"pasta {self.folder} para que o nó receba o log do líder")
                self._log(logging.WARNING,
                          f"registro final incompleto em {self.log_path} (posição "
                          f"{offset}, {len(data) - offset} bytes) descartado; uma queda "
                          f"interrompeu a gravação antes do fsync, então ele nunca foi "
                          f"confirmado")
                with open(self.log_path, "r+b") as file:
                    file.truncate(offset)
                    file.flush()
                    os.fsync(file.fileno())
                break
            entry, end = parsed
            if previous is not None and (entry.index != previous.index + 1
                                         or entry.term < previous.term):
                raise StorageError(
                    f"o arquivo {self.log_path} está inconsistente na posição {offset}: "
                    f"entrada de índice {entry.index} e termo {entry.term} depois da de "
                    f"índice {previous.index} e termo {previous.term}")
            if previous is None:
                self._first_index = entry.index
            previous = entry
            terms.append(entry.term)
            self._offsets.append(offset)
            offset = end
        return terms

    def save_state(self, term: int, voted_for: Optional[str]) -> None:
        temporary = self.state_path + ".tmp"
        with open(temporary, "wb") as file:
            file.write(json.dumps({"current_term": term, "voted_for": voted_for}).encode())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.state_path)
        _fsync_folder(self.folder)

    def append(self, entries: list) -> None:
        """Acrescenta entradas sem fsync; sync() depois cobre todas de uma vez."""
        position = self._log_file.tell()
        chunks = []
        for entry in entries:
            record = encode_record(entry)
            self._offsets.append(position)
            position += len(record)
            chunks.append(record)
        self._log_file.write(b"".join(chunks))
        self._dirty = True

    def truncate(self, index: int) -> None:
        """Apaga a entrada `index` e todas as seguintes."""
        position = index - self._first_index
        if position < 0 or position >= len(self._offsets):
            return
        offset = self._offsets[position]
        del self._offsets[position:]
        self._log_file.flush()
        self._log_file.truncate(offset)
        self._log_file.seek(offset)
        self._dirty = True

    def sync(self) -> None:
        """Um fsync para tudo o que foi gravado desde o último (group commit)."""
        if self._dirty:
            self._log_file.flush()
            os.fsync(self._log_file.fileno())
            self._dirty = False

    def close(self) -> None:
        if self._log_file is not None:
            self.sync()
            self._log_file.close()
            self._log_file = None
        if self._read_fd is not None:
            os.close(self._read_fd)
            self._read_fd = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


class MemoryStorage:
    """Armazenamento em memória com a mesma interface, para a simulação.

    O que foi gravado aqui sobrevive a uma "queda" simulada do nó, como
    sobreviveria em disco depois de um fsync.
    """

    def __init__(self):
        self.current_term = 0
        self.voted_for = None
        self.entries: list = []

    def open(self) -> tuple:
        return self.current_term, self.voted_for, list(self.entries)

    def save_state(self, term: int, voted_for: Optional[str]) -> None:
        self.current_term, self.voted_for = term, voted_for

    def append(self, entries: list) -> None:
        self.entries.extend(entries)

    def truncate(self, index: int) -> None:
        first = self.entries[0].index if self.entries else 1
        del self.entries[max(0, index - first):]

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass


def persist_ready(storage: Any, ready: Ready) -> None:
    """Grava o que `ready` pede (sem o fsync do log, que vem em storage.sync())."""
    for operation, argument in ready.log_writes:
        if operation == "truncate":
            storage.truncate(argument)
        else:
            storage.append(argument)


# ============================================================================
# 5. Máquina de estados
# ============================================================================

class KeyValueStore:
    """O armazenamento chave-valor, alterado só por entradas comprometidas.

    Comandos: {"op": "put", "key": k, "value": v} e {"op": "delete", "key": k},
    com "client_id" e "sequence" opcionais. Para cada cliente guardamos a última
    sequência aplicada e o seu resultado: um pedido repetido (o cliente não
    recebeu a resposta e tentou de novo) devolve o resultado guardado em vez de
    ser aplicado duas vezes.
    """

    def __init__(self):
        self.data: dict = {}
        self.sessions: dict = {}
        self.last_applied = 0

    def apply(self, entry: LogEntry) -> Optional[dict]:
        self.last_applied = entry.index
        command = entry.command
        if command is None:
            return None
        client_id = command.get("client_id")
        sequence = command.get("sequence")
        if client_id is not None and sequence is not None:
            previous = self.sessions.get(client_id)
            if previous is not None and sequence <= previous[0]:
                return previous[1]
        result = self._execute(command)
        if client_id is not None and sequence is not None:
            self.sessions[client_id] = (sequence, result)
        return result

    def _execute(self, command: dict) -> dict:
        operation = command.get("op")
        key = command.get("key")
        if operation == "put":
            self.data[key] = command.get("value")
            return {"key": key, "value": command.get("value")}
        if operation == "delete":
            found = key in self.data
            self.data.pop(key, None)
            return {"key": key, "found": found}
        # Um comando desconhecido chega a todos os nós igual e dá o mesmo
        # resultado em todos; a máquina de estados não pode divergir.
        return {"error": f"operação desconhecida: {operation!r}"}

    def get(self, key: str) -> tuple:
        """Devolve (encontrada, valor)."""
        if key in self.data:
            return True, self.data[key]
        return False, None


# ============================================================================
# 6. Transporte HTTP
# ============================================================================

class Waiter:
    """Um resultado que o laço de eventos entrega a uma thread que espera.

    É uma trava que nasce fechada e que set() abre. Custa bem menos que um
    threading.Event, que monta uma Condition e uma trava nova a cada espera, e
    o nó cria um Waiter por requisição.
    """

    __slots__ = ("_lock", "value")

    def __init__(self):
        self._lock = threading.Lock()
        self._lock.acquire()
        self.value = None

    def set(self, value: Any) -> None:
        self.value = value
        try:
            self._lock.release()
        except RuntimeError:
            pass  # Já estava aberta: um segundo set() só troca o valor.

    def wait(self, timeout: float) -> Any:
        """Devolve o resultado, ou None se `timeout` segundos passaram antes."""
        if self._lock.acquire(timeout=max(0.0, timeout)):
            return self.value
        return None


class HttpError(Exception):
    """Erro de uma requisição HTTP, com o status e a mensagem para o cliente."""

    def __init__(self, status: int, message: str, headers: Optional[dict] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _reject_json_constant(name: str) -> Any:
    raise ValueError(f"{name} não é JSON válido")


def parse_json_body(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_json_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise HttpError(400, f"corpo não é um JSON válido ({error})") from None


def split_url(url: str) -> tuple:
    """Separa uma URL http://host:porta em (host, porta); ValueError se inválida."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http":
        raise ValueError("a URL precisa começar com http://")
    if not parts.hostname:
        raise ValueError("falta o endereço (host) na URL")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("a porta da URL não é um número entre 0 e 65535") from None
    if port is None:
        raise ValueError("falta a porta na URL (por exemplo http://192.168.1.11:8001)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("a URL não deve ter caminho, como /status, depois da porta")
    return parts.hostname, port


def sign_request(secret: bytes, method: str, path: str, body: bytes) -> str:
    """Assina método, caminho e corpo com HMAC-SHA256; devolve o hexadecimal.

    A assinatura não leva data nem contador: as máquinas do laboratório não têm
    relógios acertados entre si. Repetir um pedido assinado antigo não faz mal,
    porque as regras de termo e índice do Raft já descartam pedidos velhos e
    tornam os repetidos inofensivos.
    """
    message = method.encode() + b"\n" + path.encode() + b"\n" + body
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


_REASON_PHRASES = {status.value: status.phrase for status in http.HTTPStatus}
_date_cache = (0, "")


def _http_date() -> str:
    """Data e hora no formato do cabeçalho Date, recalculada uma vez por segundo."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return _date_cache[1]


# Limites da leitura de cabeçalhos HTTP (os mesmos do http.client).
MAX_HEADER_LINE = 65536
MAX_HEADERS = 100


class HeaderMap(dict):
    """Cabeçalhos HTTP com nomes em minúsculas; get() ignora maiúsculas."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


def read_http_headers(file: Any) -> Any:
    """Lê cabeçalhos até a linha vazia.

    Devolve um HeaderMap; None se passam de MAX_HEADERS ou uma linha passa de
    MAX_HEADER_LINE; ou o texto do erro se a conexão fecha antes da linha vazia,
    se uma linha não tem ":" ou se Content-Length aparece repetido (duas
    leituras do corpo seriam possíveis).
    """
    headers = HeaderMap()
    for _ in range(MAX_HEADERS + 1):
        line = file.readline(MAX_HEADER_LINE + 1)
        if len(line) > MAX_HEADER_LINE:
            return None
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            return "a conexão fechou no meio dos cabeçalhos"
        name, separator, value = line.decode("iso-8859-1").partition(":")
        name = name.strip().lower()
        if not separator or not name:
            return f"linha de cabeçalho inválida: {line[:80]!r}"
        if name == "content-length" and name in headers:
            return "Content-Length repetido"
        headers[name] = value.strip()
    return None


class PeerConnection:
    """Conexão HTTP/1.1 persistente com um par, só para POST de JSON.

    Usa read_http_headers em vez do http.client, pelo mesmo motivo do
    parse_request do servidor. Erros saem como OSError ou ValueError, e a
    conexão fica fechada para a próxima chamada abrir outra.
    """

    def __init__(self, host: str, port: int, timeout: float):
        self.host = host
        self.port = port
        self.timeout = timeout
        self._sock: Optional[socket.socket] = None
        self._reader: Any = None

    def post(self, path: str, body: bytes, headers: dict) -> tuple:
        """Envia o POST e devolve (status, corpo da resposta)."""
        if self._sock is None:
            self._sock = socket.create_connection((self.host, self.port), self.timeout)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._reader = self._sock.makefile("rb")
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 "Content-Type: application/json", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1") + body
        try:
            self._sock.sendall(request)
            status_line = self._reader.readline(MAX_HEADER_LINE + 1)
            if not status_line:
                raise ConnectionError("o par fechou a conexão antes de responder")
            parts = status_line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
                raise ValueError(f"linha de status inválida: {status_line[:80]!r}")
            status = int(parts[1])
            reply_headers = read_http_headers(self._reader)
            if not isinstance(reply_headers, HeaderMap):
                raise ValueError(f"cabeçalhos de resposta inválidos ({reply_headers})")
            if "chunked" in reply_headers.get("Transfer-Encoding", "").lower():
                raise ValueError("resposta em partes (chunked) não é aceita")
            length = int(reply_headers.get("Content-Length", "0"))
            data = self._reader.read(length)
            if len(data) < length:
                raise ConnectionError("o par fechou a conexão no meio da resposta")
            if reply_headers.get("Connection", "").lower() == "close":
                self.close()
            return status, data
        except (OSError, ValueError):
            self.close()
            raise

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class RaftRequestHandler(http.server.BaseHTTPRequestHandler):
    """Atende uma conexão HTTP/1.1 (keep-alive) de um par ou de um cliente."""

    protocol_version = "HTTP/1.1"
    server_version = f"RaftLab/{__version__}"
    # Uma conexão ociosa por mais que isso é fechada, para que clientes que
    # abrem conexões e não mandam nada não prendam threads para sempre.
    timeout = 30
    # Sem TCP_NODELAY, o algoritmo de Nagle somado ao ACK atrasado do outro lado
    # segura pequenas respostas por ~40 ms.
    disable_nagle_algorithm = True
    # Vira True quando o servidor fecha esta conexão para dar a vaga a outra.
    evicted = False
    # True se a conexão levou um RPC Raft aceito; ver RaftHTTPServer.mark_peer.
    peer = False

    def log_message(self, format: str, *args: Any) -> None:
        """Silencia a linha por requisição do http.server: com heartbeats a cada
        50 ms ela afogaria o log."""

    def parse_request(self) -> bool:
        """Lê a linha de pedido e os cabeçalhos; em erro, responde e devolve False.

        Substitui a versão do http.server, que passa os cabeçalhos pelo pacote
        email: medido com benchmarks/bench.py, aquele parser era cerca de um
        terço da CPU do líder sob carga.
        """
        self.command = None
        self.request_version = "HTTP/0.9"
        self.close_connection = True
        self.requestline = self.raw_requestline.decode("iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3:
            self.send_error(400)
            return False
        command, path, version = words
        if not version.startswith("HTTP/"):
            self.send_error(400)
            return False
        if version not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(505)
            return False
        self.command, self.request_version = command, version
        # Um caminho que começa com // seria lido como endereço de outro
        # servidor por urlsplit; fica com uma barra só.
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        headers = read_http_headers(self.rfile)
        if headers is None:
            self.send_error(431)
            return False
        if not isinstance(headers, HeaderMap):
            self.send_error(400)
            return False
        self.headers = headers
        # HTTP/1.1 mantém a conexão aberta por padrão; HTTP/1.0 fecha.
        connection = headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive" or version == "HTTP/1.1":
            self.close_connection = False
        # Um corpo grande demais recebe 413 sem o convite "100 Continue".
        if headers.get("Expect", "").lower() == "100-continue" and \
                self._declared_length() <= self._body_limit():
            return self.handle_expect_100()
        return True

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def _dispatch(self, method: str) -> None:
        node: Node = self.server.node
        try:
            body = self._read_body()
            if not self.server.start_handling(self):
                # O nó já fechou esta conexão para dar a vaga a outra; o pedido
                # fica sem efeito, e quem o mandou pode repeti-lo sem risco.
                self.close_connection = True
                return
            status, payload, headers = node.route(method, self.path, body, self.headers,
                                                  self.client_address[0])
            if status == 200 and self.path.startswith("/raft/"):
                self.server.mark_peer(self)
        except HttpError as error:
            status, payload, headers = error.status, {"error": error.message}, error.headers
        except Exception as error:  # Um defeito não pode derrubar o nó.
            node.log_event(logging.ERROR, f"erro interno ao tratar {method} {self.path}: "
                                          f"{error!r}")
            status, payload, headers = 500, {"error": f"erro interno: {error}"}, {}
        self._send_json(status, payload, headers)

    # Mensagens para os erros que o próprio http.server detecta antes de chegar
    # ao roteamento (linha de pedido ou cabeçalhos malformados).
    _HTTP_ERRORS_PT = {
        400: "requisição HTTP malformada",
        404: "caminho desconhecido",
        408: "tempo esgotado esperando a requisição",
        414: "endereço (URI) longo demais",
        431: "cabeçalhos demais ou grandes demais",
        501: "método HTTP não suportado; use GET, PUT, POST ou DELETE",
        505: "versão de HTTP não suportada; use HTTP/1.1",
    }

    def send_error(self, code: int, message: Optional[str] = None,
                   explain: Optional[str] = None) -> None:
        """Responde aos erros do http.server em JSON e em português, no lugar da
        página HTML em inglês."""
        # `message` vem em inglês do http.server e fica de fora.
        text = self._HTTP_ERRORS_PT.get(code, f"erro HTTP {code}")
        self.close_connection = True
        if not hasattr(self, "command") or self.command is None:
            self.command = ""
        # Sem uma linha de pedido válida, a versão fica em HTTP/0.9, que não tem
        # cabeçalhos; a resposta sai em HTTP/1.1 mesmo assim.
        if getattr(self, "request_version", "HTTP/0.9") in ("HTTP/0.9", None):
            self.request_version = "HTTP/1.1"
        self._send_json(code, {"error": text}, {})

    def _declared_length(self) -> int:
        """Devolve o Content-Length do pedido: 0 sem ele, -1 se inválido."""
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return 0
        # int() aceitaria "+12", " 12" e "1_2"; isdigit() sozinho aceitaria "²".
        if not (raw_length.isascii() and raw_length.isdigit()):
            return -1
        return int(raw_length)

    def _body_limit(self) -> int:
        return MAX_RAFT_BODY_BYTES if self.path.startswith("/raft/") else MAX_BODY_BYTES

    def _read_body(self) -> bytes:
        """Lê o corpo pelo Content-Length, com o limite de tamanho do caminho."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise HttpError(411, "envio em partes (chunked) não é aceito; mande "
                                 "Content-Length")
        length = self._declared_length()
        if length < 0:
            self.close_connection = True
            raise HttpError(400, f"Content-Length inválido: "
                                 f"{self.headers.get('Content-Length')!r}; use só "
                                 f"algarismos, como 12")
        limit = self._body_limit()
        if length > limit:
            # O corpo não é lido, então a conexão não pode ser reaproveitada.
            self.close_connection = True
            raise HttpError(413, f"corpo de {length} bytes passa do limite de "
                                 f"{limit} bytes")
        try:
            body = self.rfile.read(length)
        except OSError:  # Conexão derrubada ou tempo esgotado no meio do corpo.
            body = b""
        if len(body) < length:
            self.close_connection = True
            raise HttpError(400, "corpo incompleto: a conexão caiu ou parou antes do fim")
        return body

    def _send_json(self, status: int, payload: Any, headers: dict) -> None:
        """Responde com `payload` em JSON; cabeçalhos e corpo numa só escrita.

        Monta a resposta direto, sem send_response/send_header, que custavam
        perto de 10% da CPU do líder sob carga (medido com benchmarks/bench.py).
        """
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        lines = [f"HTTP/1.1 {status} {_REASON_PHRASES.get(status, '')}",
                 f"Server: {self.server_version}", f"Date: {_http_date()}",
                 "Content-Type: application/json; charset=utf-8",
                 f"Content-Length: {len(data)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if self.close_connection:
            lines.append("Connection: close")
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        response = ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1")
        if self.command != "HEAD":
            response += data
        # Daqui até o próximo pedido chegar inteiro, a conexão pode perder a
        # vaga, também um cliente que não lê a resposta. Por isso quem repassa
        # um pedido (Node._forward) não o repete depois de enviado.
        self.server.mark_waiting(self)
        try:
            self.wfile.write(response)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def setup(self) -> None:
        super().setup()
        self.server.mark_waiting(self)

    def finish(self) -> None:
        self.server.forget(self)
        super().finish()


class RaftHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # Fila de conexões ainda não aceitas; o padrão (5) derruba conexões quando
    # dezenas de clientes conectam de uma vez.
    request_queue_size = 128
    # A porta fica livre logo depois que o nó para, sem esperar o TIME_WAIT.
    allow_reuse_address = True

    def __init__(self, address: tuple, node: "Node"):
        self.node = node
        self._connection_slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        # Conexões que não estão sendo atendidas pelo nó, com o instante em que
        # começaram a esperar: por um pedido, pelo resto dele ou pela leitura da
        # resposta pelo cliente.
        self._waiting_since: dict = {}
        self._waiting_lock = threading.Lock()
        # Conexões de pares (as que levaram um RPC Raft aceito) não perdem a
        # vaga enquanto esperam menos que isso. Quem leva heartbeats espera no
        # máximo um intervalo de heartbeat, bem abaixo do maior timeout de
        # eleição. O teto de conexões protegidas vale também sem --secret,
        # quando qualquer um consegue um RPC aceito.
        self._peer_grace = node.config.election_timeout_max
        self._max_peer_connections = 2 * max(1, len(node.config.peers))
        self._peer_connections = 0
        # Sockets de conexões fechadas para dar a vaga a outra: a vaga delas já
        # passou para a conexão nova e não volta ao semáforo quando a thread
        # termina.
        self._transferred: set = set()
        self._refused_connections = 0
        super().__init__(address, RaftRequestHandler)

    def mark_waiting(self, handler: Any) -> None:
        """Registra que a conexão de `handler` passou a esperar o cliente."""
        with self._waiting_lock:
            # Uma conexão que já perdeu a vaga não volta à lista: se voltasse,
            # poderia ser escolhida de novo e dar a mesma vaga duas vezes.
            if not handler.evicted:
                self._waiting_since[handler] = time.monotonic()

    def mark_peer(self, handler: Any) -> None:
        """Protege a conexão de `handler`, que acabou de levar um RPC Raft aceito."""
        # NOTE: "aceito" é só status 200. Sem --secret qualquer um consegue um,
        # e com --secret basta repetir um pedido assinado antigo (a assinatura
        # não tem data). Duas conexões por par assim ocupam as vagas protegidas,
        # e a do líder verdadeiro volta a poder perder a vaga com as vagas
        # cheias. Exigir o termo atual no pedido fecharia isso.
        if handler.peer:
            return  # O caso comum: cada heartbeat chega pela mesma conexão.
        with self._waiting_lock:
            if not handler.peer and self._peer_connections < self._max_peer_connections:
                handler.peer = True
                self._peer_connections += 1

    def forget(self, handler: Any) -> None:
        """Esquece a conexão de `handler`, que terminou."""
        with self._waiting_lock:
            self._waiting_since.pop(handler, None)
            if handler.peer:
                handler.peer = False
                self._peer_connections -= 1

    def start_handling(self, handler: Any) -> bool:
        """Tira a conexão da lista de espera; False se ela já perdeu a vaga.

        A escolha de quem perde a vaga e esta chamada usam a mesma trava, então
        um pedido é atendido ou descartado, nunca atendido numa conexão que o
        nó já fechou.
        """
        with self._waiting_lock:
            if handler.evicted:
                return False
            self._waiting_since.pop(handler, None)
            return True

    def _close_oldest_waiting(self) -> bool:
        """Fecha a conexão que espera o cliente há mais tempo, para dar a vaga a
        uma nova.

        Um cliente que abre centenas de conexões e não manda nada, ou que manda
        um byte por vez, perde as mais antigas delas. Um pedido de um cliente
        ativo chega inteiro em milissegundos e fica fora da lista enquanto o nó
        o atende. A conexão de um par que esperou menos que o maior timeout de
        eleição fica, para que os heartbeats continuem chegando mesmo com mais
        clientes que vagas.
        """
        with self._waiting_lock:
            now = time.monotonic()
            candidates = [(since, id(handler), handler)
                          for handler, since in self._waiting_since.items()
                          if not handler.peer or now - since > self._peer_grace]
            if not candidates:
                return False
            _, _, handler = min(candidates)
            del self._waiting_since[handler]
            handler.evicted = True
            self._transferred.add(handler.connection)
        try:
            handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return True

    def process_request(self, request: Any, client_address: Any) -> None:
        # A vaga de uma conexão fechada passa direto para a nova: esperar a
        # thread dela terminar travaria a aceitação de todas as outras.
        if not self._connection_slots.acquire(blocking=False) and \
                not self._close_oldest_waiting():
            self._refused_connections += 1
            if self._refused_connections % 100 == 1:
                self.node.log_event(logging.WARNING,
                                    f"limite de {MAX_CONNECTIONS} conexões atingido; "
                                    f"conexão de {client_address[0]} fechada "
                                    f"({self._refused_connections} recusadas até agora)")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            # Sem a thread (falta de memória, por exemplo), a vaga volta já.
            self._release_slot(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release_slot(request)

    def _release_slot(self, request: Any) -> None:
        with self._waiting_lock:
            if request in self._transferred:
                self._transferred.discard(request)
                return
        self._connection_slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        self.node.log_event(logging.DEBUG, f"conexão de {client_address} terminou com "
                                           f"erro: {error!r}")


class PeerSender(threading.Thread):
    """Envia as mensagens a um par, em ordem, por uma conexão persistente.

    Cada par tem a sua thread, então um par lento ou fora do ar nunca atrasa os
    heartbeats para os outros. Uma mensagem nova do mesmo tipo substitui a que
    ainda está na fila: o núcleo reenvia tudo o que falta, então só a mais
    recente importa.
    """

    def __init__(self, node: "Node", url: str):
        super().__init__(name=f"envio-{url}", daemon=True)
        self.node = node
        self.url = url
        self.host, self.port = split_url(url)
        self._mailbox: collections.deque = collections.deque()
        self._condition = threading.Condition()
        self._stopping = False
        self._connection: Optional[PeerConnection] = None
        self._failures = 0
        self._last_failure_log = 0.0

    def post(self, message: Any) -> None:
        with self._condition:
            kind = type(message)
            if any(type(queued) is kind for queued in self._mailbox):
                replaced = [queued for queued in self._mailbox if type(queued) is kind]
                self._mailbox = collections.deque(
                    queued for queued in self._mailbox if type(queued) is not kind)
                for old in replaced:
                    self.node.inbox.put(("send_failed", self.url, old))
            self._mailbox.append(message)
            self._condition.notify()

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify()

    def run(self) -> None:
        while True:
            with self._condition:
                while not self._mailbox and not self._stopping:
                    self._condition.wait()
                if self._stopping:
                    break
                message = self._mailbox.popleft()
            reply = self._send(message)
            if reply is None:
                self.node.inbox.put(("send_failed", self.url, message))
                # Espera um pouco antes de tentar de novo um par que falhou.
                with self._condition:
                    if not self._stopping:
                        self._condition.wait(self.node.config.heartbeat_interval)
            elif isinstance(message, RequestVote):
                self.node.inbox.put(("vote_reply", self.url, message, reply))
            else:
                self.node.inbox.put(("append_reply", self.url, message, reply))
        self._close()

    def _send(self, message: Any) -> Any:
        if self.url in self.node.blocked:
            return None
        if isinstance(message, RequestVote):
            path, decode = "/raft/request_vote", decode_request_vote_reply
        else:
            path, decode = "/raft/append_entries", decode_append_entries_reply
        body = encode_message(message)
        body["sender_id"] = self.node.config.node_id
        body["sender_url"] = self.node.config.url
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        try:
            if self._connection is None:
                self._connection = PeerConnection(self.host, self.port,
                                                  self.node.config.peer_timeout)
            headers = {}
            if self.node.config.secret is not None:
                headers[SIGNATURE_HEADER] = sign_request(self.node.config.secret, "POST",
                                                         path, data)
            status, raw = self._connection.post(path, data, headers)
            if status != 200:
                raise OSError(f"HTTP {status}: {raw[:200]!r}")
            data = json.loads(raw.decode("utf-8"))
            reply = decode(data)
            if isinstance(data.get("sender_id"), str):
                self.node.peer_ids[self.url] = data["sender_id"][:MAX_ID_LENGTH]
        except (OSError, http.client.HTTPException, ValueError) as error:
            self._close()
            self._note_failure(error)
            return None
        self._note_success()
        return reply

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _note_failure(self, error: Exception) -> None:
        """Registra a falha com limite de frequência: a primeira, depois uma
        linha a cada 30 s enquanto o par continuar fora."""
        self._failures += 1
        now = time.monotonic()
        if self._failures == 1:
            self._last_failure_log = now
            self.node.log_event(logging.WARNING, f"par {self.url} inacessível ({error})")
        elif now - self._last_failure_log >= 30:
            self._last_failure_log = now
            self.node.log_event(logging.WARNING,
                                f"par {self.url} continua inacessível "
                                f"({self._failures} falhas seguidas; última: {error})")

    def _note_success(self) -> None:
        if self._failures:
            self.node.log_event(logging.INFO, f"par {self.url} voltou a responder "
                                              f"(depois de {self._failures} falhas)")
            self._failures = 0


# ============================================================================
# 7. Nó
# ============================================================================

@dataclass
class NodeConfig:
    """Configuração de um nó, já validada; tempos em segundos."""

    node_id: str
    host: str
    port: int
    url: str
    peers: list
    data_dir: str
    election_timeout_min: float = DEFAULT_ELECTION_TIMEOUT_MIN_MS / 1000
    election_timeout_max: float = DEFAULT_ELECTION_TIMEOUT_MAX_MS / 1000
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL_MS / 1000
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_MS / 1000
    fault_injection: bool = False
    # Segredo compartilhado do cluster; None desliga a autenticação entre nós.
    secret: Optional[bytes] = None
    # Token exigido dos clientes em /kv/...; None deixa a API de clientes aberta.
    client_token: Optional[str] = None

    @property
    def peer_timeout(self) -> float:
        """Tempo máximo de uma chamada a um par (conexão e resposta)."""
        return max(0.2, self.election_timeout_max)


class Node:
    """Um servidor Raft completo: núcleo, disco, máquina de estados e HTTP.

    Uma única thread, o laço de eventos, mexe no núcleo. As threads HTTP só
    colocam pedidos na fila `inbox` e esperam a resposta num `Waiter`. A cada
    volta o laço trata tudo o que está na fila e então executa os `Ready` na
    ordem que a Figura 2 exige: grava e faz fsync, envia, aplica e responde.
    Um único fsync por volta cobre todas as entradas da volta (group commit).
    """

    def __init__(self, config: NodeConfig, logger: Optional[logging.Logger] = None):
        self.config = config
        self.logger = logger or logging.getLogger("raft")
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.blocked: frozenset = frozenset()
        self.core: Optional[RaftCore] = None
        self.storage = DiskStorage(config.data_dir, self._log_storage)
        self.kv = KeyValueStore()
        self.server: Optional[RaftHTTPServer] = None
        self.senders: dict = {}
        self._loop_thread: Optional[threading.Thread] = None
        self._server_thread: Optional[threading.Thread] = None
        self._status: dict = {}
        self._status_changed = threading.Condition()
        self._term_role = (0, Role.FOLLOWER)
        self._next_read_id = 0
        self._reads: dict = {}
        self._reads_waiting_apply: list = []
        self._pending_writes: dict = {}
        self._unknown_senders: set = set()
        # Id de cada par, aprendido das respostas; só serve para os logs.
        self.peer_ids: dict = {}
        self._forward_connections = threading.local()
        self._stopped = False
        self._auth_failures_logged: dict = {}
        self._auth_log_lock = threading.Lock()
        # Sinalizado por um pedido de parada ou por um erro fatal do laço.
        self.stop_requested = threading.Event()
        self.fatal_error: Optional[str] = None

    # ---- partida e parada --------------------------------------------------

    def bind(self) -> None:
        """Abre a porta HTTP. Levanta OSError se ela está ocupada."""
        self.server = RaftHTTPServer((self.config.host, self.config.port), self)

    def open_storage(self) -> None:
        """Lê termo, voto e log do disco e monta o núcleo. Levanta StorageError."""
        term, voted_for, entries = self.storage.open()
        self.core = RaftCore(
            self.config.node_id, list(self.config.peers), rng=random.Random(),
            now=time.monotonic(),
            election_timeout_min=self.config.election_timeout_min,
            election_timeout_max=self.config.election_timeout_max,
            heartbeat_interval=self.config.heartbeat_interval,
            current_term=term, voted_for=voted_for, log=entries)
        self._term_role = (self.core.current_term, self.core.role)
        if term or entries:
            self.log_event(logging.INFO,
                           f"estado recuperado do disco: termo {term}, voto "
                           f"{voted_for or '-'}, {len(entries)} entrada(s) no log "
                           f"(último índice {self.core.last_log_index})")
        if self.core.current_term != term:
            self.storage.save_state(self.core.current_term, self.core.voted_for)
        self._publish_status()

    def start(self) -> None:
        for url in self.config.peers:
            sender = PeerSender(self, url)
            self.senders[url] = sender
            sender.start()
        self._loop_thread = threading.Thread(target=self._run_loop, name="laço", daemon=True)
        self._loop_thread.start()
        self._server_thread = threading.Thread(target=self.server.serve_forever,
                                               kwargs={"poll_interval": 0.2},
                                               name="http", daemon=True)
        self._server_thread.start()
        peers = " ".join(self.config.peers) or "(nenhum: cluster de um nó só)"
        self.log_event(logging.INFO,
                       f"nó iniciado em {self.config.url}; pares: {peers}; dados em "
                       f"{self.config.data_dir}")
        if self.config.secret is None:
            self.log_event(logging.WARNING,
                           f"sem segredo de cluster: qualquer máquina da rede pode votar e "
                           f"replicar neste nó; numa rede compartilhada use "
                           f"{SECRET_ENV_VAR}=... ou --secret")

    def stop(self) -> None:
        """Para o nó: fecha o servidor, termina o laço e grava tudo no disco."""
        if self._stopped:
            return
        self._stopped = True
        if self.server is not None:
            if self._server_thread is not None:
                self.server.shutdown()
            self.server.server_close()
        if self._loop_thread is not None:
            self.inbox.put(("stop",))
            self._loop_thread.join(timeout=5)
        for sender in self.senders.values():
            sender.stop()
        for sender in self.senders.values():
            sender.join(timeout=2)
        self.storage.close()
        self.log_event(logging.INFO, "nó parado; estado gravado no disco")

    # ---- log ---------------------------------------------------------------

    def log_event(self, level: int, text: str, term: Optional[int] = None,
                  role: Optional[Role] = None) -> None:
        if term is None or role is None:
            term, role = self._term_role
        prefix = node_name(self.config.node_id)
        self.logger.log(level, f"[{prefix} | termo {term} | {ROLE_NAMES_PT[role]}] {text}")

    def _log_storage(self, level: int, text: str) -> None:
        self.log_event(level, text)

    # ---- laço de eventos ---------------------------------------------------

    def _run_loop(self) -> None:
        """Roda o laço de eventos até o pedido de parada.

        Um erro inesperado aqui (um defeito, ou uma falha de disco como disco
        cheio) para o nó: o estado em memória pode ter se afastado do que está
        no disco, e seguir rodando arriscaria confirmar o que não foi gravado.
        """
        try:
            self._loop_until_stopped()
        except Exception as error:
            self.fatal_error = f"{type(error).__name__}: {error}"
            self.log_event(logging.CRITICAL,
                           f"erro fatal no laço de eventos ({self.fatal_error}); o nó vai "
                           f"parar para não rodar com estado inconsistente")
            self.stop_requested.set()

    def _loop_until_stopped(self) -> None:
        core = self.core
        last_sweep = time.monotonic()
        while True:
            wait = core.next_deadline() - time.monotonic()
            batch = []
            try:
                batch.append(self.inbox.get(timeout=min(max(wait, 0.001), 0.05)))
            except queue.Empty:
                pass
            while len(batch) < 1000:
                try:
                    batch.append(self.inbox.get_nowait())
                except queue.Empty:
                    break
            stopping = False
            effects = _Effects()
            now = time.monotonic()
            for event in batch:
                if event[0] == "stop":
                    stopping = True
                else:
                    self._handle_event(event, now, effects)
            if now >= core.next_deadline():
                self._absorb(core.tick(now), effects)
            self._finish(effects)
            if now - last_sweep >= 0.5:
                self._expire_waiters(now)
                last_sweep = now
            if stopping:
                return

    def _handle_event(self, event: tuple, now: float, effects: "_Effects") -> None:
        core = self.core
        if len(core.peer_names) != len(self.peer_ids):
            core.peer_names = dict(self.peer_ids)
        kind = event[0]
        if kind == "request_vote":
            _, request, waiter = event
            self._absorb(core.handle_request_vote(request, now), effects, reply_to=waiter)
        elif kind == "append_entries":
            _, sender, request, waiter = event
            self._absorb(core.handle_append_entries(sender, request, now), effects,
                         reply_to=waiter)
        elif kind == "vote_reply":
            _, peer, request, reply = event
            self._absorb(core.handle_request_vote_reply(peer, request, reply, now), effects)
        elif kind == "append_reply":
            _, peer, request, reply = event
            self._absorb(core.handle_append_entries_reply(peer, request, reply, now),
                         effects)
        elif kind == "send_failed":
            _, peer, request = event
            self._absorb(core.handle_send_failure(peer, request, now), effects)
        elif kind == "propose":
            _, command, waiter, deadline = event
            ready = core.propose(command, now)
            self._absorb(ready, effects)
            if ready.proposal is None:
                waiter.set(("not_leader",))
            else:
                index, term = ready.proposal
                self._pending_writes.setdefault(index, []).append((term, waiter, deadline))
        elif kind == "read":
            _, key, waiter, deadline = event
            self._next_read_id += 1
            read_id = self._next_read_id
            self._reads[read_id] = (key, waiter, deadline)
            self._absorb(core.request_read(read_id, now), effects)

    def _absorb(self, ready: Ready, effects: "_Effects", reply_to: Optional[Waiter] = None
                ) -> None:
        """Junta o `ready` ao lote; as gravações vão logo ao arquivo, sem fsync."""
        for line in ready.lines:
            self.log_event(line.level, line.text, line.term, line.role)
        self._term_role = (self.core.current_term, self.core.role)
        persist_ready(self.storage, ready)
        effects.hard_state_changed |= ready.hard_state_changed
        effects.messages.extend(ready.messages)
        if reply_to is not None:
            effects.replies.append((reply_to, ready.reply))
        effects.committed.extend(ready.committed)
        effects.reads_ready.extend(ready.reads_ready)
        effects.reads_failed.extend(ready.reads_failed)

    def _finish(self, effects: "_Effects") -> None:
        # O líder manda os AppendEntries antes do próprio fsync, e os seguidores
        # gravam em paralelo com ele (§10.2.1 da tese de Ongaro). Isso é seguro:
        # com pares, uma entrada só é comprometida depois que um seguidor a
        # confirma, e essa confirmação só é lida na próxima volta deste laço,
        # depois do sync() abaixo. Sem pares, o commit é aplicado e respondido
        # só depois do sync(). Termo e voto novos vão ao disco antes de
        # qualquer mensagem, como antes.
        early = self.core.role == Role.LEADER and not effects.hard_state_changed
        if early:
            self._post_messages(effects.messages)
        # 1. Disco: um fsync para todas as entradas do lote, e o termo e o voto.
        self.storage.sync()
        if effects.hard_state_changed:
            self.storage.save_state(self.core.current_term, self.core.voted_for)
        # 2. Rede: só agora, com o estado no disco, as respostas (e as mensagens
        #    de quem não é líder) podem sair.
        if not early:
            self._post_messages(effects.messages)
        for waiter, reply in effects.replies:
            waiter.set(reply)
        # 3. Máquina de estados e clientes.
        for entry in effects.committed:
            result = self.kv.apply(entry)
            for term, waiter, _ in self._pending_writes.pop(entry.index, ()):
                if term == entry.term:
                    waiter.set(("ok", result, entry.index, entry.term))
                else:
                    waiter.set(("lost",))
        for read_id, index in effects.reads_ready:
            self._reads_waiting_apply.append((index, read_id))
        if self._reads_waiting_apply:
            still_waiting = []
            for index, read_id in self._reads_waiting_apply:
                if index <= self.kv.last_applied:
                    key, waiter, _ = self._reads.pop(read_id, (None, None, None))
                    if waiter is not None:
                        waiter.set(("ok",) + self.kv.get(key))
                else:
                    still_waiting.append((index, read_id))
            self._reads_waiting_apply = still_waiting
        for read_id in effects.reads_failed:
            _, waiter, _ = self._reads.pop(read_id, (None, None, None))
            if waiter is not None:
                waiter.set(("not_leader",))
        # Os comandos já aplicados saem da memória, menos os mais recentes, que
        # o líder ainda manda aos seguidores sem precisar ler o disco.
        self.core.log.release(min(self.kv.last_applied,
                                  self.core.last_log_index - RECENT_ENTRIES_IN_MEMORY))
        self._publish_status()

    def _post_messages(self, messages: list) -> None:
        for peer, message in messages:
            sender = self.senders.get(peer)
            if sender is not None:
                sender.post(message)

    def _expire_waiters(self, now: float) -> None:
        """Esquece pedidos de clientes que já desistiram (passaram do prazo)."""
        for index in list(self._pending_writes):
            alive = [item for item in self._pending_writes[index] if item[2] > now]
            if alive:
                self._pending_writes[index] = alive
            else:
                del self._pending_writes[index]
        for read_id in [read_id for read_id, item in self._reads.items() if item[2] <= now]:
            del self._reads[read_id]

    def _publish_status(self) -> None:
        core = self.core
        if core.role == Role.LEADER:
            leader_url = self.config.url
        else:
            leader_url = core.leader_key if core.leader_id is not None else None
        status = {
            "id": self.config.node_id,
            "url": self.config.url,
            "state": core.role.value,
            "term": core.current_term,
            "leader_id": core.leader_id,
            "leader_url": leader_url,
            "voted_for": core.voted_for,
            "commit_index": core.commit_index,
            "last_applied": self.kv.last_applied,
            "last_log_index": core.last_log_index,
            "last_log_term": core.last_log_term,
            "peers": list(self.config.peers),
        }
        changed = status["leader_url"] != self._status.get("leader_url")
        self._status = status
        if changed:
            with self._status_changed:
                self._status_changed.notify_all()

    def status(self) -> dict:
        return dict(self._status)

    # ---- roteamento HTTP ---------------------------------------------------

    def route(self, method: str, raw_path: str, body: bytes, headers: Any,
              client_address: str = "?") -> tuple:
        """Trata uma requisição; devolve (status, corpo, cabeçalhos extras)."""
        path = urllib.parse.urlsplit(raw_path).path
        forwarded = headers.get(FORWARDED_HEADER) is not None
        if path.startswith("/raft/") or path.startswith("/admin/"):
            self._check_signature(method, raw_path, body, headers, client_address)
        elif path.startswith("/kv"):
            self._check_client_token(headers, client_address)
        if path.startswith("/kv/"):
            key = urllib.parse.unquote(path[len("/kv/"):])
            self._check_key(key)
            if method == "GET":
                return self._client_read(key, forwarded)
            if method == "PUT":
                return self._client_put(key, body, forwarded)
            if method == "DELETE":
                return self._client_delete(key, body, forwarded)
            raise _method_not_allowed(method, "GET, PUT, DELETE")
        if path == "/status":
            if method not in ("GET", "HEAD"):
                raise _method_not_allowed(method, "GET")
            return 200, self.status(), {}
        if path in ("/raft/request_vote", "/raft/append_entries"):
            if method != "POST":
                raise _method_not_allowed(method, "POST")
            return self._raft_rpc(path, body)
        if path == "/admin/partition":
            if method not in ("GET", "POST"):
                raise _method_not_allowed(method, "GET, POST")
            return self._admin_partition(method, body)
        if path == "/kv" or path == "/kv/":
            raise HttpError(400, "falta a chave: use /kv/<chave>")
        raise HttpError(404, f"caminho desconhecido: {path}; use /kv/<chave>, /status "
                             f"ou /raft/...")

    def _check_signature(self, method: str, raw_path: str, body: bytes, headers: Any,
                         client_address: str) -> None:
        secret = self.config.secret
        if secret is None:
            return
        received = headers.get(SIGNATURE_HEADER, "")
        expected = sign_request(secret, method, raw_path, body)
        if not hmac.compare_digest(received.encode("ascii", "replace"), expected.encode()):
            reason = "sem assinatura" if not received else "com assinatura errada"
            self._log_auth_failure(client_address,
                                   f"pedido {method} {raw_path} de {client_address} "
                                   f"{reason} rejeitado (401); confira se todos os nós "
                                   f"do cluster usam o mesmo segredo")
            raise HttpError(401, "assinatura ausente ou inválida; este nó exige o segredo "
                                 "do cluster")

    def _check_client_token(self, headers: Any, client_address: str) -> None:
        token = self.config.client_token
        if token is None:
            return
        received = headers.get("Authorization", "")
        if not hmac.compare_digest(received.encode("utf-8", "replace"),
                                   f"Bearer {token}".encode("utf-8")):
            self._log_auth_failure(client_address,
                                   f"pedido de cliente de {client_address} sem token "
                                   f"válido rejeitado (401)")
            raise HttpError(401, "token de cliente ausente ou inválido; mande o cabeçalho "
                                 "Authorization: Bearer <token>",
                            {"WWW-Authenticate": "Bearer"})

    def _log_auth_failure(self, client_address: str, text: str) -> None:
        """Registra um pedido não autenticado, no máximo uma linha por endereço
        por minuto; o segredo e o token nunca aparecem no log."""
        now = time.monotonic()
        with self._auth_log_lock:
            last = self._auth_failures_logged.get(client_address)
            if last is not None and now - last < AUTH_FAILURE_LOG_INTERVAL:
                return
            if len(self._auth_failures_logged) > 1000:
                self._auth_failures_logged.clear()
            self._auth_failures_logged[client_address] = now
        self.log_event(logging.WARNING, text)

    @staticmethod
    def _check_key(key: str) -> None:
        if not key:
            raise HttpError(400, "falta a chave: use /kv/<chave>")
        if len(key) > MAX_KEY_LENGTH:
            raise HttpError(400, f"a chave passa de {MAX_KEY_LENGTH} caracteres")

    def _raft_rpc(self, path: str, body: bytes) -> tuple:
        data = parse_json_body(body)
        try:
            data = _require_object(data, "o corpo")
            sender_id = _require_str(data, "sender_id")
            sender_url = _require_str(data, "sender_url", 512)
            if path == "/raft/request_vote":
                request = decode_request_vote(data)
            else:
                request = decode_append_entries(data)
        except BadMessage as error:
            raise HttpError(400, f"mensagem Raft inválida: {error}") from None
        if sender_url in self.blocked:
            raise HttpError(503, f"tráfego de {sender_url} bloqueado por injeção de falhas")
        if sender_url in self.config.peers:
            self.peer_ids.setdefault(sender_url, sender_id)
        elif sender_url not in self._unknown_senders and len(self._unknown_senders) < 16:
            self._unknown_senders.add(sender_url)
            self.log_event(logging.WARNING,
                           f"RPC do nó {sender_id} em {sender_url}, que não está em "
                           f"--peers; confira se os nós usam as mesmas URLs")
        waiter = Waiter()
        if isinstance(request, RequestVote):
            self.inbox.put(("request_vote", request, waiter))
        else:
            self.inbox.put(("append_entries", sender_url, request, waiter))
        reply = waiter.wait(self.config.peer_timeout)
        if reply is None:
            raise HttpError(503, "o nó não respondeu a tempo", {"Retry-After": "1"})
        answer = encode_message(reply)
        answer["sender_id"] = self.config.node_id
        return 200, answer, {}

    def _admin_partition(self, method: str, body: bytes) -> tuple:
        if not self.config.fault_injection:
            self.log_event(logging.WARNING,
                           "pedido de partição recusado: o nó não foi iniciado com "
                           "--fault-injection")
            raise HttpError(403, "injeção de falhas desligada; inicie o nó com "
                                 "--fault-injection para usar /admin/partition")
        if method == "POST":
            data = parse_json_body(body)
            blocked = data.get("blocked") if isinstance(data, dict) else None
            if not isinstance(blocked, list) or not all(isinstance(url, str)
                                                        for url in blocked):
                raise HttpError(400, "use {\"blocked\": [\"http://host:porta\", ...]}")
            unknown = [url for url in blocked if url not in self.config.peers]
            if unknown:
                raise HttpError(400, f"URLs que não estão em --peers: {', '.join(unknown)}")
            self.blocked = frozenset(blocked)
            if blocked:
                self.log_event(logging.WARNING,
                               f"injeção de falhas: tráfego bloqueado com {', '.join(blocked)}")
            else:
                self.log_event(logging.WARNING, "injeção de falhas: partição desfeita")
        return 200, {"blocked": sorted(self.blocked)}, {}

    # ---- API de clientes ---------------------------------------------------

    def _client_put(self, key: str, body: bytes, forwarded: bool) -> tuple:
        data = parse_json_body(body)
        if not isinstance(data, dict) or "value" not in data:
            raise HttpError(400, "corpo esperado: {\"value\": <qualquer JSON>}")
        command = {"op": "put", "key": key, "value": data["value"]}
        self._add_session(command, data)
        # O JSON reescrito pode crescer: "1e15" vira "1000000000000000.0". Sem
        # este limite, o AppendEntries com a entrada passaria do que os
        # seguidores aceitam, e eles nunca a receberiam.
        size = command_size(command)
        if size > MAX_BODY_BYTES:
            raise HttpError(413, f"o valor ocupa {size} bytes depois de reescrito em "
                                 f"JSON, acima do limite de {MAX_BODY_BYTES} bytes")
        return self._client_write(command, forwarded, body)

    def _client_delete(self, key: str, body: bytes, forwarded: bool) -> tuple:
        command = {"op": "delete", "key": key}
        if body.strip():
            data = parse_json_body(body)
            if not isinstance(data, dict):
                raise HttpError(400, "o corpo de DELETE, se houver, precisa ser um objeto")
            self._add_session(command, data)
        return self._client_write(command, forwarded, body)

    @staticmethod
    def _add_session(command: dict, data: dict) -> None:
        client_id, sequence = data.get("client_id"), data.get("sequence")
        if client_id is None and sequence is None:
            return
        if not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_ID_LENGTH:
            raise HttpError(400, "client_id precisa ser um texto de 1 a 64 caracteres")
        if isinstance(sequence, bool) or not isinstance(sequence, int) or \
                not 1 <= sequence <= MAX_WIRE_INTEGER:
            raise HttpError(400, "sequence precisa ser um inteiro positivo")
        command["client_id"] = client_id
        command["sequence"] = sequence

    def _client_write(self, command: dict, forwarded: bool, body: bytes) -> tuple:
        deadline = time.monotonic() + self.config.request_timeout
        method = "PUT" if command["op"] == "put" else "DELETE"
        while True:
            waiter = Waiter()
            self.inbox.put(("propose", command, waiter, deadline))
            result = waiter.wait(deadline - time.monotonic())
            if result is None:
                raise HttpError(503, "tempo esgotado esperando o commit; o comando pode "
                                     "ou não ter sido aplicado", {"Retry-After": "1"})
            if result[0] == "ok":
                _, outcome, index, term = result
                if command["op"] == "delete" and not outcome.get("found"):
                    return 404, {"error": f"chave não encontrada: {command['key']}",
                                 "index": index, "term": term}, {}
                answer = {"key": command["key"], "index": index, "term": term}
                if command["op"] == "put":
                    answer["value"] = outcome.get("value")
                return 200, answer, {}
            if result[0] == "not_leader":
                answer = self._forward_or_wait(method, command["key"], body, forwarded,
                                               deadline)
                if answer is not None:
                    return answer
            # "lost": a entrada foi substituída por outro líder; tenta de novo.

    def _client_read(self, key: str, forwarded: bool) -> tuple:
        deadline = time.monotonic() + self.config.request_timeout
        while True:
            waiter = Waiter()
            self.inbox.put(("read", key, waiter, deadline))
            result = waiter.wait(deadline - time.monotonic())
            if result is None:
                raise HttpError(503, "tempo esgotado confirmando a liderança com a "
                                     "maioria; tente de novo", {"Retry-After": "1"})
            if result[0] == "ok":
                _, found, value = result
                if not found:
                    return 404, {"error": f"chave não encontrada: {key}"}, {}
                return 200, {"key": key, "value": value}, {}
            answer = self._forward_or_wait("GET", key, b"", forwarded, deadline)
            if answer is not None:
                return answer

    def _forward_or_wait(self, method: str, key: str, body: bytes, forwarded: bool,
                         deadline: float) -> Optional[tuple]:
        """Encaminha o pedido ao líder, ou espera um líder aparecer.

        Devolve a resposta a dar ao cliente, ou None para tentar de novo aqui.
        Um pedido que já veio encaminhado não é encaminhado outra vez.
        """
        if forwarded:
            # 421: o pedido certamente não foi aplicado aqui, e quem o repassou
            # pode tentar outro líder. Um 503 quer dizer "talvez aplicado".
            raise HttpError(421, "este nó não é mais o líder; tente de novo",
                            {"Retry-After": "1"})
        leader_url = self._status.get("leader_url")
        if leader_url and leader_url != self.config.url and leader_url not in self.blocked:
            answer = self._forward(leader_url, method, key, body, deadline)
            # Uma escrita com 503 do líder pode ter sido aplicada: repetir
            # poderia aplicá-la duas vezes, então o cliente recebe o 503.
            if answer is not None and answer[0] != 421 and \
                    not (answer[0] == 503 and method == "GET"):
                return answer
        # Sem líder conhecido (ou o líder não respondeu): espera uma mudança
        # por um instante e tenta de novo, até o prazo do cliente.
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HttpError(503, "nenhum líder disponível no momento (eleição em "
                                 "andamento ou maioria fora do ar); tente de novo",
                            {"Retry-After": "1"})
        with self._status_changed:
            self._status_changed.wait(min(remaining, self.config.heartbeat_interval * 2))
        return None

    def _forward(self, leader_url: str, method: str, key: str, body: bytes,
                 deadline: float) -> Optional[tuple]:
        """Repassa o pedido ao líder por uma conexão persistente desta thread.

        Devolve (status, corpo, cabeçalhos) do líder, ou None se ele não pôde
        ser contatado e o pedido certamente não chegou.
        """
        connections = getattr(self._forward_connections, "by_url", None)
        if connections is None:
            connections = self._forward_connections.by_url = {}
        path = "/kv/" + urllib.parse.quote(key, safe="")
        headers = {FORWARDED_HEADER: self.config.node_id,
                   "Content-Type": "application/json"}
        if self.config.client_token is not None:
            headers["Authorization"] = f"Bearer {self.config.client_token}"
        for attempt in range(2):
            connection = connections.get(leader_url)
            if connection is not None and connection.sock is not None and \
                    _closed_or_dirty(connection.sock):
                # O líder já fechou esta conexão (ociosa há muito tempo, ou
                # tirada da vaga): uma nova, antes de mandar qualquer coisa.
                connection.close()
                connection = None
            reused = connection is not None
            if connection is None:
                host, port = split_url(leader_url)
                connection = http.client.HTTPConnection(host, port)
                connections[leader_url] = connection
            timeout = max(0.05, deadline - time.monotonic())
            sent = False
            try:
                if connection.sock is None:
                    connection.timeout = timeout
                    connection.connect()
                    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                else:
                    connection.sock.settimeout(timeout)
                connection.request(method, path, body=body or None, headers=headers)
                sent = True
                response = connection.getresponse()
                raw = response.read()
                payload = json.loads(raw.decode("utf-8")) if raw else {}
            except (OSError, http.client.HTTPException, ValueError) as error:
                connections.pop(leader_url, None)
                connection.close()
                if reused and (not sent or method == "GET") and isinstance(
                        error, (http.client.RemoteDisconnected, ConnectionResetError,
                                BrokenPipeError)):
                    # O líder fechou a conexão antes de receber o pedido (ou o
                    # pedido é uma leitura): uma conexão nova resolve.
                    continue
                if sent and method != "GET":
                    # O pedido pode ter chegado ao líder: repetir poderia
                    # aplicá-lo duas vezes, então quem decide é o cliente.
                    raise HttpError(503, f"o líder {leader_url} não respondeu ({error}); "
                                         f"o comando pode ou não ter sido aplicado",
                                    {"Retry-After": "1"}) from None
                return None
            extra = {}
            if response.getheader("Retry-After"):
                extra["Retry-After"] = response.getheader("Retry-After")
            return response.status, payload, extra
        return None


def _closed_or_dirty(sock: socket.socket) -> bool:
    """True se o outro lado fechou `sock` ou mandou algo que ninguém pediu."""
    previous = sock.gettimeout()
    sock.settimeout(0)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except (BlockingIOError, InterruptedError):
        return False  # Nada a ler: a conexão segue aberta e limpa.
    except OSError:
        return True
    finally:
        sock.settimeout(previous)
    return True


@dataclass
class _Effects:
    """O que um lote de eventos acumulou para executar no fim da volta."""

    hard_state_changed: bool = False
    messages: list = field(default_factory=list)
    replies: list = field(default_factory=list)
    committed: list = field(default_factory=list)
    reads_ready: list = field(default_factory=list)
    reads_failed: list = field(default_factory=list)


def _method_not_allowed(method: str, allowed: str) -> HttpError:
    return HttpError(405, f"método {method} não é aceito neste caminho; use {allowed}",
                     {"Allow": allowed})


# ============================================================================
# 8. Linha de comando
# ============================================================================

# O argparse escreve as mensagens em inglês; estas traduções cobrem as que um
# usuário do nó e do lançador pode ver.
_ARGPARSE_PT = {
    "usage: ": "uso: ",
    "options": "opções",
    "positional arguments": "argumentos posicionais",
    "show this help message and exit": "mostra esta ajuda e sai",
    "show program's version number and exit": "mostra a versão e sai",
    "the following arguments are required: %s": "faltam os argumentos obrigatórios: %s",
    "unrecognized arguments: %s": "argumentos não reconhecidos: %s",
    "expected one argument": "esperava um valor",
    "expected at least one argument": "esperava pelo menos um valor",
    "argument %(argument_name)s: %(message)s": "argumento %(argument_name)s: %(message)s",
    "invalid %(type)s value: %(value)r": "valor inválido: %(value)r",
    "invalid choice: %(value)r (choose from %(choices)s)":
        "opção inválida: %(value)r (escolha entre %(choices)s)",
    "%(prog)s: error: %(message)s\n": "%(prog)s: erro: %(message)s\n",
    "ambiguous option: %(option)s could match %(matches)s":
        "opção ambígua: %(option)s pode ser %(matches)s",
    "not allowed with argument %s": "não pode ser usado com o argumento %s",
    "ignored explicit argument %r": "argumento explícito ignorado: %r",
}


def translate_argparse_messages() -> None:
    """Faz o argparse escrever uso, ajuda e erros em português."""
    argparse._ = lambda text: _ARGPARSE_PT.get(text, text)


class ConfigError(ValueError):
    """Configuração inválida; o texto nomeia a opção, o valor e a correção."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raft_distribuido.py",
        description="Nó Raft do laboratório: elege um líder, replica um log e serve um "
                    "armazenamento chave-valor por HTTP/JSON.",
        epilog="Exemplo (três máquinas, um comando em cada): python3 raft_distribuido.py "
               "--id 0 --host 192.168.1.10 --port 8000 --peers http://192.168.1.11:8001 "
               "http://192.168.1.12:8002")
    parser.add_argument("--id", required=True,
                        help="identificador deste nó, único no cluster (por exemplo 0, 1, 2)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="endereço IP desta máquina em que o nó escuta; os pares "
                             "usam http://HOST:PORT para falar com ele (padrão: "
                             "%(default)s)")
    parser.add_argument("--port", type=int, required=True, help="porta TCP deste nó")
    parser.add_argument("--peers", nargs="*", default=[], metavar="URL",
                        help="URLs dos outros nós, como http://192.168.1.11:8001 (sem "
                             "este nó; vazio = cluster de um nó só)")
    parser.add_argument("--data-dir", default=None,
                        help="pasta do termo, do voto e do log (padrão: "
                             "./dados-raft/no-<id>)")
    parser.add_argument("--url", default=None,
                        help="URL pela qual os pares alcançam este nó, se diferente de "
                             "http://HOST:PORT (por exemplo com --host 0.0.0.0)")
    parser.add_argument("--election-timeout-min", type=int,
                        default=DEFAULT_ELECTION_TIMEOUT_MIN_MS, metavar="MS",
                        help="menor timeout de eleição, em milissegundos (padrão: %(default)s)")
    parser.add_argument("--election-timeout-max", type=int,
                        default=DEFAULT_ELECTION_TIMEOUT_MAX_MS, metavar="MS",
                        help="maior timeout de eleição, em milissegundos (padrão: %(default)s)")
    parser.add_argument("--heartbeat-interval", type=int,
                        default=DEFAULT_HEARTBEAT_INTERVAL_MS, metavar="MS",
                        help="intervalo entre heartbeats do líder, em milissegundos (padrão: "
                             "%(default)s)")
    parser.add_argument("--request-timeout", type=int, default=DEFAULT_REQUEST_TIMEOUT_MS,
                        metavar="MS",
                        help="tempo máximo de espera de um cliente antes de receber 503, "
                             "em milissegundos (padrão: %(default)s)")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"],
                        help="detalhe do log; debug mostra também os heartbeats (padrão: "
                             "%(default)s)")
    parser.add_argument("--fault-injection", action="store_true",
                        help="aceita POST /admin/partition para simular partições "
                             "(usado pelo lançador; não ligue numa rede compartilhada)")
    parser.add_argument("--secret", default=None,
                        help=f"segredo compartilhado do cluster: RPCs Raft e pedidos de "
                             f"/admin passam a levar uma assinatura HMAC, e nós de outro "
                             f"cluster não conseguem votar nem replicar aqui. Prefira a "
                             f"variável de ambiente {SECRET_ENV_VAR}, que não aparece no ps")
    parser.add_argument("--client-token", default=None,
                        help=f"token exigido dos clientes em /kv/... (cabeçalho "
                             f"Authorization: Bearer TOKEN); também pela variável "
                             f"{CLIENT_TOKEN_ENV_VAR}")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="mostra a versão e sai")
    return parser


def _same_address(host_a: str, host_b: str) -> bool:
    loopback = {"localhost", "127.0.0.1", "::1"}
    host_a, host_b = host_a.lower(), host_b.lower()
    return host_a == host_b or (host_a in loopback and host_b in loopback)


def build_config(args: argparse.Namespace) -> NodeConfig:
    """Valida as opções e monta a configuração; levanta ConfigError."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", args.id):
        raise ConfigError(f"--id {args.id!r} é inválido; use letras, dígitos, '-', '_' ou "
                          f"'.', até 64 caracteres (por exemplo --id 0)")
    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} está fora do intervalo 1 a 65535")
    if args.heartbeat_interval < 1:
        raise ConfigError(f"--heartbeat-interval ({args.heartbeat_interval} ms) precisa "
                          f"ser pelo menos 1 ms")
    minimum = MIN_ELECTION_TO_HEARTBEAT_RATIO * args.heartbeat_interval
    if args.election_timeout_min < minimum:
        raise ConfigError(
            f"--election-timeout-min ({args.election_timeout_min} ms) precisa ser pelo "
            f"menos {MIN_ELECTION_TO_HEARTBEAT_RATIO}x --heartbeat-interval "
            f"({args.heartbeat_interval} ms), isto é, {minimum} ms; aumente o primeiro ou "
            f"diminua o segundo")
    if args.election_timeout_max <= args.election_timeout_min:
        raise ConfigError(
            f"--election-timeout-max ({args.election_timeout_max} ms) precisa ser maior "
            f"que --election-timeout-min ({args.election_timeout_min} ms), para que os "
            f"timeouts sorteados sejam diferentes; por exemplo "
            f"--election-timeout-max {2 * args.election_timeout_min}")
    if args.request_timeout < 1:
        raise ConfigError(f"--request-timeout ({args.request_timeout} ms) precisa ser "
                          f"pelo menos 1 ms")
    url = args.url or f"http://{args.host}:{args.port}"
    if ":" in args.host and not args.url:
        url = f"http://[{args.host}]:{args.port}"
    try:
        split_url(url)
    except ValueError as error:
        raise ConfigError(f"--url {url!r} é inválida: {error}") from None
    peers = []
    for peer in args.peers:
        try:
            peer_host, peer_port = split_url(peer)
        except ValueError as error:
            raise ConfigError(f"--peers: {peer!r} não é uma URL válida ({error}); use o "
                              f"formato http://192.168.1.11:8001") from None
        normalized = peer.rstrip("/")
        if normalized == url or (peer_port == args.port
                                 and (_same_address(peer_host, args.host)
                                      or args.host in ("0.0.0.0", "::"))):
            raise ConfigError(f"--peers: {peer!r} é o endereço deste próprio nó; liste só "
                              f"os outros nós")
        if normalized in peers:
            raise ConfigError(f"--peers: {peer!r} aparece mais de uma vez")
        peers.append(normalized)
    data_dir = args.data_dir or os.path.join("dados-raft", f"no-{args.id}")
    secret = args.secret if args.secret is not None else os.environ.get(SECRET_ENV_VAR)
    if secret is not None and len(secret) < 8:
        raise ConfigError(f"o segredo (--secret ou {SECRET_ENV_VAR}) tem {len(secret)} "
                          f"caracteres; use pelo menos 8, e o mesmo em todos os nós")
    client_token = args.client_token
    if client_token is None:
        client_token = os.environ.get(CLIENT_TOKEN_ENV_VAR)
    if client_token is not None and not client_token:
        raise ConfigError(f"o token de cliente (--client-token ou {CLIENT_TOKEN_ENV_VAR}) "
                          f"está vazio")
    return NodeConfig(node_id=args.id, host=args.host, port=args.port, url=url,
                      peers=peers, data_dir=data_dir,
                      election_timeout_min=args.election_timeout_min / 1000,
                      election_timeout_max=args.election_timeout_max / 1000,
                      heartbeat_interval=args.heartbeat_interval / 1000,
                      request_timeout=args.request_timeout / 1000,
                      fault_injection=args.fault_injection,
                      secret=secret.encode("utf-8") if secret is not None else None,
                      client_token=client_token)


def _describe_bind_error(config: NodeConfig, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return (f"a porta {config.port} (--port) já está em uso em {config.host}; pare o "
                f"outro processo (veja quem é com: ss -ltnp 'sport = :{config.port}') ou "
                f"escolha outra porta com --port")
    if error.errno == errno.EADDRNOTAVAIL:
        return (f"o endereço {config.host} (--host) não pertence a esta máquina; use o "
                f"IP desta máquina (veja com: ip -4 addr) ou 0.0.0.0")
    if error.errno == errno.EACCES:
        return (f"sem permissão para abrir a porta {config.port} (--port); portas abaixo "
                f"de 1024 exigem root, use por exemplo 8000")
    return f"não foi possível abrir {config.host}:{config.port} (--host/--port): {error}"


# Opção M_ARENA_MAX do mallopt da glibc (malloc.h).
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 1) -> None:
    """Limita a glibc a `arenas` arenas de memória; sem glibc, não faz nada.

    Num sistema de 64 bits, a glibc cria até 8 arenas por núcleo (macro
    NARENAS_FROM_NCORES de malloc/arena.c), uma por thread nova até esse
    limite, e cada arena guarda a memória liberada para reusar depois. Com uma
    thread por conexão, um nó cheio de conexões chegou a 95 MiB de VmRSS no fuzz
    (tests/fuzz.py), contra 50 MiB com uma arena só. Com o GIL, só uma thread
    Python roda por vez, e o benchmarks/bench.py não mediu perda de vazão com
    uma arena.
    """
    if not sys.platform.startswith("linux"):
        return  # Outro alocador (macOS, Windows): ele decide sozinho.
    try:
        import ctypes
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_ARENA_MAX, arenas)
    except (ImportError, OSError, AttributeError, TypeError):
        pass  # Linux sem glibc ou sem ctypes: fica o alocador como está.


def main(argv: Optional[list] = None) -> int:
    # Antes de qualquer thread, porque as arenas nascem com elas.
    limit_malloc_arenas()
    translate_argparse_messages()
    args = build_parser().parse_args(argv)
    try:
        config = build_config(args)
    except ConfigError as error:
        print(f"erro de configuração: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s.%(msecs)03d %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    node = Node(config)
    try:
        node.bind()
    except OSError as error:
        print(f"erro: {_describe_bind_error(config, error)}", file=sys.stderr)
        return 1
    try:
        node.open_storage()
    except (StorageError, OSError) as error:
        node.server.server_close()
        print(f"erro: {error}", file=sys.stderr)
        return 1

    def request_stop(signal_number: int, _frame: Any) -> None:
        node.log_event(logging.INFO,
                       f"sinal {signal.Signals(signal_number).name} recebido; parando")
        node.stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    node.start()
    # Espera em fatias curtas para que os sinais sejam tratados logo.
    while not node.stop_requested.wait(0.5):
        pass
    node.stop()
    if node.fatal_error:
        print(f"erro: o nó parou por um erro fatal: {node.fatal_error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
