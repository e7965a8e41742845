from collections import Counter
from tests.property.contracts import test_settlement_state_machine as m

def test_stats(net):
    counts = Counter()
    original = m.SettlementMachine.act
    def act(self, who, contract, function, args, error):
        counts[(function, error)] += 1
        return original(self, who, contract, function, args, error)
    m.SettlementMachine.act = act
    try:
        m.test_settlement_and_registry_follow_the_ghost_model(net)
    finally:
        m.SettlementMachine.act = original
    for k, v in sorted(counts.items(), key=str):
        if k[0] in ("declareDefault", "refund", "claim", "dispute", "fund"):
            print(k, v)
