// Where this process stands in a job of several: torchrun's variables (also what `swav launch` sets), else
// SLURM's (srun), else a single process.

export interface DistEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  masterAddr: string;
  masterPort: number;
  /** Where the numbers came from, for messages. */
  source: 'torchrun' | 'slurm';
}

const int = (v: string | undefined): number | null => (v !== undefined && /^\d+$/.test(v.trim()) ? Number(v) : null);

/** The first host of a SLURM node list: 'node[03-05,9],gpu1' -> 'node03'. */
export function firstSlurmHost(list: string): string {
  const m = /^([^,[]+)(?:\[([^\]]+)\])?/.exec(list.trim());
  if (!m) return list;
  if (!m[2]) return m[1];
  return m[1] + m[2].split(/[,-]/)[0];
}

/** The job this process belongs to, or null when it runs alone (no variables, or a world of one). */
export function distEnv(env: NodeJS.ProcessEnv = process.env): DistEnv | null {
  const world = int(env.WORLD_SIZE);
  if (world !== null) {
    const rank = int(env.RANK);
    if (rank === null || rank >= world)
      throw new Error(`WORLD_SIZE is ${world} but RANK is '${env.RANK ?? ''}': set RANK to 0..${world - 1} (torchrun and swav launch do)`);
    if (world < 2) return null;
    return {
      rank,
      worldSize: world,
      localRank: int(env.LOCAL_RANK) ?? rank,
      localWorldSize: int(env.LOCAL_WORLD_SIZE) ?? world,
      masterAddr: env.MASTER_ADDR ?? '127.0.0.1',
      masterPort: int(env.MASTER_PORT) ?? 29500,
      source: 'torchrun',
    };
  }
  const tasks = int(env.SLURM_NTASKS);
  const procId = int(env.SLURM_PROCID);
  if (tasks !== null && procId !== null && tasks > 1) {
    const perNode = int(env.SLURM_NTASKS_PER_NODE?.split('(')[0]) ?? int(env.SLURM_TASKS_PER_NODE?.split('(')[0]) ?? tasks;
    return {
      rank: procId,
      worldSize: tasks,
      localRank: int(env.SLURM_LOCALID) ?? 0,
      localWorldSize: perNode,
      masterAddr: env.MASTER_ADDR ?? firstSlurmHost(env.SLURM_JOB_NODELIST ?? env.SLURM_NODELIST ?? '127.0.0.1'),
      masterPort: int(env.MASTER_PORT) ?? 29500,
      source: 'slurm',
    };
  }
  return null;
}
