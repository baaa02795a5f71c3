"""Testes com processos reais do segredo de cluster (--secret) e do token de clientes.

Vários clusters de estudantes dividem a rede do laboratório: um nó de outro
cluster, ou qualquer pedido sem a assinatura certa, não pode votar, replicar
nem mudar o termo deste cluster.
"""

import json
import unittest

from cluster_util import (ClusterTestCase, http_request, pick_free_ports, start_all,
                          wait_for, wait_for_applied, wait_for_leader)
from raft_distribuido import SIGNATURE_HEADER, sign_request

SECRET = "segredo-do-grupo-a"


def signed_post(node, path, payload, secret=SECRET):
    body = json.dumps(payload).encode("utf-8")
    signature = sign_request(secret.encode("utf-8"), "POST", path, body)
    return node.request("POST", path, body=body, headers={SIGNATURE_HEADER: signature})


def vote_request(term, candidate="intruso", last_index=10**6, last_term=10**6):
    return {"term": term, "candidate_id": candidate, "last_log_index": last_index,
            "last_log_term": last_term, "sender_id": candidate,
            "sender_url": "http://127.0.0.1:1"}


class SecretTest(ClusterTestCase):
    def start_secure_cluster(self):
        nodes = self.make_cluster(3, extra_args=("--secret", SECRET))
        start_all(nodes)
        leader = wait_for_leader(nodes)
        # A entrada vazia do líder novo chega a todos antes das comparações.
        wait_for_applied(nodes, 1)
        return nodes, leader

    def snapshot(self, nodes):
        fields = ("term", "voted_for", "leader_id", "last_log_index", "commit_index")
        return [{name: node.status()[name] for name in fields} for node in nodes]

    def test_unsigned_requests_get_401_and_change_nothing(self):
        nodes, leader = self.start_secure_cluster()
        before = self.snapshot(nodes)
        for node in nodes:
            vote = node.request("POST", "/raft/request_vote", body=vote_request(10**9))
            self.assertEqual(vote.status, 401, vote.describe())
            self.assertIn("error", vote.json())
            append = node.request("POST", "/raft/append_entries", body={
                "term": 10**9, "leader_id": "intruso", "prev_log_index": 0,
                "prev_log_term": 0, "entries": [], "leader_commit": 0,
                "sender_id": "intruso", "sender_url": "http://127.0.0.1:1"})
            self.assertEqual(append.status, 401, append.describe())
            wrong = signed_post(node, "/raft/request_vote", vote_request(10**9),
                                secret="outro-segredo")
            self.assertEqual(wrong.status, 401, wrong.describe())
            admin = node.request("POST", "/admin/partition", body={"blocked": []})
            self.assertEqual(admin.status, 401, admin.describe())
        self.assertEqual(self.snapshot(nodes), before)
        self.assertEqual(leader.put("depois", 1).status, 200)

    def test_auth_failures_logged_at_limited_rate(self):
        nodes, leader = self.start_secure_cluster()
        for _ in range(20):
            leader.request("POST", "/raft/request_vote", body=vote_request(10**9))
        lines = [line for line in leader.log_text().splitlines() if "401" in line]
        self.assertEqual(len(lines), 1, lines)
        self.assertNotIn(SECRET, "\n".join(node.log_since_start() for node in nodes))

    def test_node_of_other_cluster_cannot_disrupt(self):
        nodes, leader = self.start_secure_cluster()
        before = leader.status()
        port = pick_free_ports(1)[0]
        intruder = self.make_node("9", "127.0.0.1", port, [node.url for node in nodes],
                                  extra_args=("--secret", "segredo-do-grupo-b",
                                              "--election-timeout-min", "150",
                                              "--election-timeout-max", "200"))
        intruder.start()
        # O intruso faz várias eleições, cada uma com termo maior.
        wait_for(lambda: (intruder.status() or {}).get("term", 0) >= 5, 10,
                 "o nó de outro cluster fazer eleições")
        after = leader.status()
        self.assertEqual(after["term"], before["term"])
        self.assertEqual(after["state"], "leader")
        for node in nodes:
            self.assertEqual(node.status()["leader_id"], leader.node_id)
        self.assertEqual(leader.put("chave", "valor").status, 200)

    def test_replayed_signed_requests_change_nothing(self):
        nodes, leader = self.start_secure_cluster()
        old_term = leader.status()["term"]
        old_heartbeat = {"term": old_term, "leader_id": leader.node_id, "prev_log_index": 0,
                         "prev_log_term": 0,
                         "entries": [{"term": old_term, "index": 1, "command": None}],
                         "leader_commit": 1, "sender_id": leader.node_id,
                         "sender_url": leader.url}
        old_vote = vote_request(old_term, candidate=leader.node_id, last_index=1,
                                last_term=old_term)
        # Um termo novo: o líder é parado e outro assume.
        leader.kill()
        survivors = [node for node in nodes if node is not leader]
        new_leader = wait_for_leader(survivors)
        index = new_leader.put("x", 1).json()["index"]
        wait_for_applied(survivors, index)
        before = self.snapshot(survivors)
        for node in survivors:
            append = signed_post(node, "/raft/append_entries", old_heartbeat)
            self.assertEqual(append.status, 200, append.describe())
            self.assertFalse(append.json()["success"])
            vote = signed_post(node, "/raft/request_vote", old_vote)
            self.assertEqual(vote.status, 200, vote.describe())
            self.assertFalse(vote.json()["vote_granted"])
        self.assertEqual(self.snapshot(survivors), before)
        self.assertEqual(new_leader.get("x").json()["value"], 1)


class ClientTokenTest(ClusterTestCase):
    def test_client_api_requires_token(self):
        nodes = self.make_cluster(3, extra_args=("--client-token", "token-da-turma"))
        start_all(nodes)
        leader = wait_for_leader(nodes)
        follower = next(node for node in nodes if node is not leader)
        missing = follower.put("x", 1)
        self.assertEqual(missing.status, 401, missing.describe())
        wrong = follower.request("PUT", "/kv/x", body={"value": 1},
                                 headers={"Authorization": "Bearer outro"})
        self.assertEqual(wrong.status, 401, wrong.describe())
        good = {"Authorization": "Bearer token-da-turma"}
        written = follower.request("PUT", "/kv/x", body={"value": 1}, headers=good)
        self.assertEqual(written.status, 200, written.describe())
        read = follower.request("GET", "/kv/x", headers=good)
        self.assertEqual(read.json()["value"], 1)
        self.assertEqual(follower.status()["state"], "follower")


class NoSecretWarningTest(ClusterTestCase):
    def test_node_without_secret_warns_once(self):
        node = self.make_cluster(1)[0]
        node.start()
        wait_for(lambda: (node.status() or {}).get("state") == "leader", 5, "nó único líder")
        warnings = [line for line in node.log_text().splitlines() if "sem segredo" in line]
        self.assertEqual(len(warnings), 1)


if __name__ == "__main__":
    unittest.main()
