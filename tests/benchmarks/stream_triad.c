/* STREAM-style triad, a[i] = b[i] + s * c[i], with OpenMP.
 *
 * The reference that tests/benchmarks/check_speed_targets.py compares
 * gpucnn's copy bandwidth with. It follows STREAM's rules (J. D. McCalpin,
 * https://www.cs.virginia.edu/stream/): each array several times the
 * last-level cache, arrays first touched by the threads that use them,
 * best time of NTIMES, traffic counted as 3 arrays x 8 bytes (two reads, one
 * write; the write-allocate read is not counted), GB = 10^9 bytes.
 *
 * Build: gcc -O3 -fopenmp -march=native stream_triad.c -o stream_triad
 * Run:   OMP_NUM_THREADS=2 ./stream_triad ELEMENTS NTIMES
 * Prints one line: "triad_gbps=<best GB/s> copy_gbps=<best GB/s> threads=<n> checksum=<x>"
 * (copy is STREAM's c[i] = a[i], counted as 2 arrays x 8 bytes, for reference).
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s ELEMENTS NTIMES\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]);
    int ntimes = atoi(argv[2]);
    if (n <= 0 || ntimes <= 0) {
        fprintf(stderr, "ELEMENTS and NTIMES must be positive\n");
        return 2;
    }
    double *a = aligned_alloc(64, ((n * sizeof(double) + 63) / 64) * 64);
    double *b = aligned_alloc(64, ((n * sizeof(double) + 63) / 64) * 64);
    double *c = aligned_alloc(64, ((n * sizeof(double) + 63) / 64) * 64);
    if (!a || !b || !c) {
        fprintf(stderr, "out of memory for 3 x %ld doubles\n", n);
        return 1;
    }
    const double s = 3.0;
    /* First touch by the threads that will use each page. */
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        a[i] = 1.0;
        b[i] = 2.0;
        c[i] = 0.5;
    }
    double best_triad = 1e30, best_copy = 1e30;
    for (int k = 0; k < ntimes + 1; k++) { /* the first pass of each is a warm-up */
        double t0 = omp_get_wtime();
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++)
            c[i] = a[i];
        double t1 = omp_get_wtime();
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++)
            a[i] = b[i] + s * c[i];
        double t2 = omp_get_wtime();
        if (k > 0) {
            if (t1 - t0 < best_copy) best_copy = t1 - t0;
            if (t2 - t1 < best_triad) best_triad = t2 - t1;
        }
    }
    double checksum = 0.0;
#pragma omp parallel for reduction(+ : checksum) schedule(static)
    for (long i = 0; i < n; i += 4096)
        checksum += a[i];
    printf("triad_gbps=%.3f copy_gbps=%.3f threads=%d checksum=%.6g\n",
           3.0 * sizeof(double) * n / best_triad / 1e9, 2.0 * sizeof(double) * n / best_copy / 1e9,
           omp_get_max_threads(), checksum);
    free(a);
    free(b);
    free(c);
    return 0;
}
