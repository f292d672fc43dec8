using System.Runtime.ExceptionServices;
using Microsoft.ML.Recurrent.Kernels;

namespace Microsoft.ML.Recurrent.Core;

/// <summary>Two independent halves of one piece of work (e.g. the two directions of a bidirectional layer).</summary>
internal interface IPairWork
{
    /// <summary>Runs half <paramref name="part"/> (0 or 1).</summary>
    void RunPart(int part);
}

/// <summary>
/// Runs the two halves of an <see cref="IPairWork"/> at once: half 0 on the calling thread, half 1 on one long-lived
/// worker thread — no task, closure or other allocation per call, and a wake-up of a few microseconds (the events
/// spin briefly before they block). When the worker is busy with another caller, both halves run on the calling thread;
/// results are the same either way, as the halves share no state. The worker runs its half on the caller's kernel
/// paths (<see cref="Sgemm.Path"/>, <see cref="FusedKernels.Path"/>; thread-static, normally Auto), so a path forced on the
/// caller's thread covers both halves.
/// </summary>
internal static class PairRunner
{
    private static readonly object Gate = new();
    private static readonly ManualResetEventSlim WorkReady = new(false, spinCount: 2047);
    private static readonly ManualResetEventSlim WorkDone = new(false, spinCount: 2047);
    private static IPairWork? s_work;
    private static Exception? s_workerError;
    private static Thread? s_worker;
    private static KernelPath s_sgemmPath, s_fusedPath;
    private static bool s_allowEmulation;

    /// <summary>Runs both halves; rethrows the first exception either half threw.</summary>
    public static void Run(IPairWork work)
    {
        // Busy with another caller, or (a call from inside a half) already ours: both halves here, one after the other.
        if (Monitor.IsEntered(Gate) || !Monitor.TryEnter(Gate))
        {
            work.RunPart(0);
            work.RunPart(1);
            return;
        }
        try
        {
            if (s_worker is null)
            {
                s_worker = new Thread(WorkerLoop) { IsBackground = true, Name = "Microsoft.ML.Recurrent pair worker" };
                s_worker.Start();
            }
            s_work = work;
            s_workerError = null;
            s_sgemmPath = Sgemm.Path;
            s_fusedPath = FusedKernels.Path;
            s_allowEmulation = FusedKernels.AllowEmulation;
            WorkDone.Reset();
            WorkReady.Set();
            Exception? own = null;
            try
            {
                work.RunPart(0);
            }
            catch (Exception e)
            {
                own = e;
            }
            WorkDone.Wait();
            s_work = null;
            if (own is not null) ExceptionDispatchInfo.Throw(own);
            if (s_workerError is not null) ExceptionDispatchInfo.Throw(s_workerError);
        }
        finally
        {
            Monitor.Exit(Gate);
        }
    }

    private static void WorkerLoop()
    {
        while (true)
        {
            WorkReady.Wait();
            WorkReady.Reset();
            RunWorkerPart();
            WorkDone.Set();
        }
    }

    /// <summary>
    /// Runs half 1 of the current work. A separate frame, so that while the worker waits for the next call nothing on
    /// its stack still refers to the last work (and, through it, to a network's activations).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void RunWorkerPart()
    {
        try
        {
            Sgemm.Path = s_sgemmPath;
            FusedKernels.Path = s_fusedPath;
            FusedKernels.AllowEmulation = s_allowEmulation;
            s_work!.RunPart(1);
        }
        catch (Exception e)
        {
            s_workerError = e;
        }
    }
}
