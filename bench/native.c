/*
 * The real kernel doing what bench/kernel-ops.ts asks of the simulator: map and touch
 * N anonymous pages, fork a child holding them, mprotect them read-only, munmap them.
 * Prints one JSON line of nanoseconds per page for each operation (medians of RUNS).
 * Built by `hmm-lab bench` with the system compiler.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	long pages = argc > 1 ? atol(argv[1]) : 65536;
	int runs = argc > 2 ? atoi(argv[2]) : 5;
	long psz = sysconf(_SC_PAGESIZE);
	size_t len = pages * psz;
	double fault[64], fork_ns[64], prot[64], unmap[64];

	if (runs > 64)
		runs = 64;
	for (int r = 0; r < runs; r++) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		double t0, t1;

		if (p == MAP_FAILED)
			return 1;
		/* No THP: one fault per base page, as the simulator's default machine does. */
		madvise(p, len, MADV_NOHUGEPAGE);
		t0 = now_ns();
		for (long i = 0; i < pages; i++)
			p[i * psz] = (char)i;
		t1 = now_ns();
		fault[r] = (t1 - t0) / pages;

		t0 = now_ns();
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		t1 = now_ns();
		waitpid(pid, NULL, 0);
		fork_ns[r] = (t1 - t0) / pages;

		t0 = now_ns();
		mprotect(p, len, PROT_READ);
		t1 = now_ns();
		prot[r] = (t1 - t0) / pages;

		t0 = now_ns();
		munmap(p, len);
		t1 = now_ns();
		unmap[r] = (t1 - t0) / pages;
	}
	printf("{\"pages\":%ld,\"cpu_fault\":%.2f,\"fork_page\":%.2f,\"mprotect_page\":%.2f,\"munmap_page\":%.2f}\n",
	       pages, median(fault, runs), median(fork_ns, runs), median(prot, runs), median(unmap, runs));
	return 0;
}
