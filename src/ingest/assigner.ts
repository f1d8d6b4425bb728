// Co-partitioned group assignment: partition p of every input topic goes to the same member,
// so one process owns all parts of a car (kafkajs's default round-robin would split them).
import { AssignerProtocol, type PartitionAssigner } from "kafkajs";

export const CO_PARTITIONED = "RccarCoPartitioned";

export const coPartitionedAssigner: PartitionAssigner = ({ cluster }) => ({
  name: CO_PARTITIONED,
  version: 0,
  async assign({ members, topics }) {
    const memberIds = members.map((m) => m.memberId).sort();
    const assignment = new Map<string, Record<string, number[]>>(memberIds.map((id) => [id, {}]));
    for (const topic of topics) {
      const partitions = cluster
        .findTopicPartitionMetadata(topic)
        .map((m) => m.partitionId)
        .sort((a, b) => a - b);
      for (const p of partitions) {
        const owner = assignment.get(memberIds[p % memberIds.length]!)!;
        (owner[topic] ??= []).push(p);
      }
    }
    return memberIds.map((memberId) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment: assignment.get(memberId)!, userData: Buffer.alloc(0) }),
    }));
  },
  protocol({ topics }) {
    return { name: CO_PARTITIONED, metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }) };
  },
});
