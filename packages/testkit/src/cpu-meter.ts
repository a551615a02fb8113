import { readdirSync, readFileSync } from 'node:fs';

const TICK_MS = 10; // USER_HZ is 100 on Linux

function procTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  } catch {
    return 0;
  }
}

/** Write-like system calls the process has made (`syscw` in /proc/PID/io: write, writev, ...); 0 when unreadable. */
export function processWrites(pid: number = process.pid): number {
  try {
    const match = /^syscw:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

function machineBusyTicks(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line;
  return user + nice + system + irq + softirq + steal;
}

/**
 * CPU time spent between `start()` and `stop()`, by named group of processes (Linux /proc), plus
 * the machine's total busy time. Short-lived processes (Postgres backends) are not listed one by
 * one: their time is in `machineMs` minus the groups. Also each group's write system calls
 * (`groupsWrites`): on loopback a socket write runs the receiver's TCP path too, so the count of
 * writes is much of what messaging costs a process.
 */
export function startCpuMeter(groups: Record<string, () => Array<number | undefined>>) {
  const before = new Map<number, { ticks: number; writes: number }>();
  const machineBefore = machineBusyTicks();
  const pidsOf = (name: string) => (groups[name]?.() ?? []).filter((p): p is number => typeof p === 'number');
  for (const name of Object.keys(groups))
    for (const pid of pidsOf(name)) before.set(pid, { ticks: procTicks(pid), writes: processWrites(pid) });
  return {
    stop(): { machineMs: number; groupsMs: Record<string, number>; groupsWrites: Record<string, number> } {
      const groupsMs: Record<string, number> = {};
      const groupsWrites: Record<string, number> = {};
      for (const name of Object.keys(groups)) {
        const pids = pidsOf(name);
        groupsMs[name] = pids.reduce((sum, pid) => sum + (procTicks(pid) - (before.get(pid)?.ticks ?? 0)) * TICK_MS, 0);
        groupsWrites[name] = pids.reduce((sum, pid) => sum + processWrites(pid) - (before.get(pid)?.writes ?? 0), 0);
      }
      return { machineMs: (machineBusyTicks() - machineBefore) * TICK_MS, groupsMs, groupsWrites };
    },
  };
}

/** The peak resident set size of a live process (VmHWM, Linux), in bytes; 0 when it is gone. */
export function peakRssBytes(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * CPU of a process and all its children, living or reaped (Linux /proc): its own time, the time
 * of the children it has waited for (cutime + cstime: a postmaster reaps every backend), and
 * its live children's. For Postgres, pass the postmaster: every backend and worker is in it.
 */
export function processTreeCpuMs(pid: number): number {
  const own = (() => {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    } catch {
      return 0;
    }
  })();
  const children = childPids(pid).reduce((sum, child) => sum + procTicks(child), 0);
  return (own + children) * TICK_MS;
}

/** The live processes whose parent is `pid` (Linux /proc), e.g. a postmaster's workers and backends. */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
    } catch {
      continue; // gone between the listing and the read
    }
  }
  return children;
}
