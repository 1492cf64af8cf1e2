from channels.simulators import main

main()
