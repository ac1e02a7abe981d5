// What the CPU backend's worker threads need from the system that Swift does not import.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>

// A hint to the CPU that the calling thread is spinning: it gives the pipeline (and an SMT
// sibling) back for a while instead of issuing loads as fast as it can.
static inline void kiln_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

// Binds the calling thread to one CPU; 0 on success.
static inline int kiln_pin_current_thread(int cpu) {
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set);
#else
    return -1;
#endif
}

// How many CPUs this thread may run on when they are exactly CPUs 0..n-1 (a process given the
// whole machine, or its first CPUs); -1 otherwise.
static inline int kiln_allowed_cpus_from_zero(void) {
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

// Lets the calling thread run on CPUs 0..n-1 again; 0 on success.
static inline int kiln_unpin_current_thread(int n) {
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < n; i++) CPU_SET(i, &set);
    return sched_setaffinity(0, sizeof(set), &set);
#else
    return -1;
#endif
}

// The CPU the calling thread runs on, or -1.
static inline int kiln_current_cpu(void) {
#if defined(__linux__)
    return sched_getcpu();
#else
    return -1;
#endif
}

#include <stdlib.h>

// The processes of a parallel job on this machine, as its launcher tells them (Open MPI's
// mpirun, MPICH's Hydra); 1 for a process started on its own.
static inline int kiln_local_processes(void) {
    const char *names[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"};
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = getenv(names[i]);
        int n = v ? atoi(v) : 0;
        if (n > 0) return n;
    }
    return 1;
}
