; idle.s: every vCPU halts at once with IF = 0 and stays asleep until the host stops the VM. Used
; to time the start-up of many vCPUs without the guests competing for the host cores.

        .entry start
start:
        cli
        hlt
        jmp start
