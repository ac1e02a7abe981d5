// What the CPU backend's worker threads (and PoCL's set-up) need from the system that Swift
// does not import. Declarations only, with no system headers: the definitions need _GNU_SOURCE,
// which must not leak into the module Swift imports (it would redefine glibc's types there).
#ifndef KILN_THREAD_SUPPORT_H
#define KILN_THREAD_SUPPORT_H

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
int kiln_pin_current_thread(int cpu);

// Lets the calling thread run on CPUs 0..n-1 again; 0 on success.
int kiln_unpin_current_thread(int n);

// How many CPUs the calling thread may run on when they are exactly CPUs 0..n-1 (a process
// given the whole machine, or its first CPUs); -1 otherwise.
int kiln_allowed_cpus_from_zero(void);

// The CPU the calling thread runs on, or -1.
int kiln_current_cpu(void);

#endif
