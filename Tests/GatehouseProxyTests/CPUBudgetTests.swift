import Testing
@testable import GatehouseProxy

/// The default event-loop count: the fewest of the cores, the affinity mask and every cgroup v2 quota.
@Suite struct CPUBudgetTests {
    @Test func kernelCPUListsAreCounted() {
        #expect(CPUBudget.countCPUs(list: "0") == 1)
        #expect(CPUBudget.countCPUs(list: "0-3,6,8-9") == 7)
        #expect(CPUBudget.countCPUs(list: " 1-1 ") == 1)
        #expect(CPUBudget.countCPUs(list: "3-1") == nil)
        #expect(CPUBudget.countCPUs(list: "a-b") == nil)
        #expect(CPUBudget.countCPUs(list: "") == nil)
    }

    @Test func quotasRoundUpToWholeLoopsAndMaxIsNoLimit() {
        #expect(CPUBudget.quotaCPUs(cpuMax: "max 100000\n") == nil)
        #expect(CPUBudget.quotaCPUs(cpuMax: "50000 100000\n") == 1)
        #expect(CPUBudget.quotaCPUs(cpuMax: "150000 100000") == 2)
        #expect(CPUBudget.quotaCPUs(cpuMax: "200000 100000") == 2)
        #expect(CPUBudget.quotaCPUs(cpuMax: "0 100000") == nil)
    }

    @Test func theTightestBoundWinsAndSaysWhy() {
        #expect(CPUBudget.decide(affinityList: "0-7", cpuMax: [], cores: 8) == CPUBudget(loops: 8, reason: "cores"))
        // taskset -c 0 on an 8-core machine.
        #expect(CPUBudget.decide(affinityList: "0", cpuMax: [], cores: 8) == CPUBudget(loops: 1, reason: "affinity"))
        // systemd CPUQuota=200% on the unit, unlimited parents.
        #expect(CPUBudget.decide(affinityList: "0-7", cpuMax: ["200000 100000", "max 100000"], cores: 8)
            == CPUBudget(loops: 2, reason: "cgroup cpu.max"))
        // Nothing readable: NIO's count, never below one.
        #expect(CPUBudget.decide(affinityList: nil, cpuMax: [], cores: 0) == CPUBudget(loops: 1, reason: "cores"))
    }

    @Test func theAffinityLineAndCgroupChainAreFound() {
        let status = "Name:\tgatehouse\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\nMems_allowed:\t1\n"
        #expect(CPUBudget.affinityList(status: status) == "0-1")
        #expect(CPUBudget.cgroupV2Directories(cgroup: "0::/system.slice/gatehouse.service\n") == [
            "/sys/fs/cgroup/system.slice/gatehouse.service", "/sys/fs/cgroup/system.slice", "/sys/fs/cgroup",
        ])
        #expect(CPUBudget.cgroupV2Directories(cgroup: "0::/\n") == ["/sys/fs/cgroup"])
        // cgroup v1 only: NIO's count covers it.
        #expect(CPUBudget.cgroupV2Directories(cgroup: "1:cpu:/\n") == [])
    }
}
