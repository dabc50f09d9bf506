import Foundation
import NIOCore

/// How many event loops the process can keep busy: one per CPU it may actually run on. NIO's
/// `System.coreCount` reads a container's cgroup quota and cpuset, but not the scheduler affinity
/// (`taskset`, systemd `CPUAffinity=`) nor the quota of a systemd unit's own cgroup (`CPUQuota=`), so a
/// gateway pinned to one core started two loops that then fought over it.
public struct CPUBudget: Equatable, Sendable {
    public let loops: Int
    /// What bounded the count, for the start-up log ("affinity", "cgroup cpu.max", "cores").
    public let reason: String

    /// The budget from what the system reports; every input is optional (absent files, other OSes).
    /// - affinityList: `Cpus_allowed_list` from /proc/self/status ("0-3,6").
    /// - cpuMax: the `cpu.max` files from the process's cgroup up to the root ("max 100000", "50000 100000").
    /// - cores: NIO's count (cgroup v1 quota, cpuset, online CPUs).
    public static func decide(affinityList: String?, cpuMax: [String], cores: Int) -> CPUBudget {
        var budget = CPUBudget(loops: max(1, cores), reason: "cores")
        if let list = affinityList, let allowed = countCPUs(list: list), allowed < budget.loops {
            budget = CPUBudget(loops: allowed, reason: "affinity")
        }
        for line in cpuMax {
            if let quota = quotaCPUs(cpuMax: line), quota < budget.loops {
                budget = CPUBudget(loops: quota, reason: "cgroup cpu.max")
            }
        }
        return budget
    }

    /// Counts a kernel CPU list ("0-3,6,8-9"). nil when it does not parse.
    static func countCPUs(list: String) -> Int? {
        var count = 0
        for part in list.split(separator: ",") {
            let bounds = part.trimmingCharacters(in: .whitespaces).split(separator: "-", omittingEmptySubsequences: false)
            guard let low = bounds.first.flatMap({ Int($0) }) else { return nil }
            switch bounds.count {
            case 1: count += 1
            case 2:
                guard let high = Int(bounds[1]), high >= low else { return nil }
                count += high - low + 1
            default: return nil
            }
        }
        return count > 0 ? count : nil
    }

    /// The whole CPUs a cgroup v2 `cpu.max` ("QUOTA PERIOD") grants, rounded up: 150000 100000 is 2
    /// loops (a loop that can run 1.5 cores' worth is still worth having). nil for "max" or junk.
    static func quotaCPUs(cpuMax: String) -> Int? {
        let fields = cpuMax.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count >= 1, let quota = Int(fields[0]), quota > 0 else { return nil }
        let period = fields.count >= 2 ? Int(fields[1]) ?? 100_000 : 100_000
        guard period > 0 else { return nil }
        return max(1, (quota + period - 1) / period)
    }

    /// Reads /proc and /sys on Linux; elsewhere only NIO's count applies.
    public static func current() -> CPUBudget {
        decide(affinityList: affinityList(status: readFile("/proc/self/status")),
               cpuMax: cgroupV2Directories(cgroup: readFile("/proc/self/cgroup")).compactMap { readFile("\($0)/cpu.max") },
               cores: System.coreCount)
    }

    static func affinityList(status: String?) -> String? {
        guard let status else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("Cpus_allowed_list:") {
            return line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    /// The process's cgroup v2 directory ("0::/system.slice/gatehouse.service") and each parent below
    /// /sys/fs/cgroup: a quota on a parent slice bounds the unit too.
    static func cgroupV2Directories(cgroup: String?) -> [String] {
        guard let cgroup else { return [] }
        for line in cgroup.split(separator: "\n") where line.hasPrefix("0::") {
            var parts = line.dropFirst(3).split(separator: "/").map(String.init)
            var directories: [String] = []
            while !parts.isEmpty {
                directories.append("/sys/fs/cgroup/" + parts.joined(separator: "/"))
                parts.removeLast()
            }
            return directories + ["/sys/fs/cgroup"]
        }
        return []
    }

    private static func readFile(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }
}
