#define _GNU_SOURCE
#include <sched.h>

#include "thread_support.h"

int kiln_pin_current_thread(int cpu) {
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set);
#else
    (void)cpu;
    return -1;
#endif
}

int kiln_unpin_current_thread(int n) {
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < n; i++) CPU_SET(i, &set);
    return sched_setaffinity(0, sizeof(set), &set);
#else
    (void)n;
    return -1;
#endif
}

int kiln_allowed_cpus_from_zero(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
    int n = CPU_COUNT(&set);
    for (int i = 0; i < n; i++) if (!CPU_ISSET(i, &set)) return -1;
    return n;
#else
    return -1;
#endif
}

int kiln_current_cpu(void) {
#if defined(__linux__)
    return sched_getcpu();
#else
    return -1;
#endif
}
